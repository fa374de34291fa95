-- Running workflows of one app version (recovery candidates; the caller decides which
-- executors are gone).
SELECT id, name, executor_id, parent_id
FROM workflows
WHERE status = 'PENDING' AND app_version = :app_version
ORDER BY created_at, id
