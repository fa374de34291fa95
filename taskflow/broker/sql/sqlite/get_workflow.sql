SELECT id, name, status, inputs, output, error, queue, executor_id, app_version, user_name AS "user", parent_id, priority, attempts, created_at, started_at, finished_at, timeout_ms, deadline_at, partition_key, dedup_id, delay_until, expires_at, retries
FROM workflows
WHERE id = :id
