-- Running workflows by owner, oldest start first, without their payloads.
SELECT id, name, executor_id, queue, started_at, attempts
FROM workflows
WHERE status = 'PENDING'
ORDER BY executor_id, started_at, id
LIMIT :limit
