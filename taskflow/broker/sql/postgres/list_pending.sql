-- Running workflows of one app version (recovery candidates; the caller decides which
-- executors are gone).
SELECT id, name, executor_id, parent_id
FROM {schema}.workflows
WHERE status = 'PENDING' AND app_version = %(app_version)s
ORDER BY created_at, id
