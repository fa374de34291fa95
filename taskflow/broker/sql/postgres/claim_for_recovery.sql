-- Take over a running workflow from an executor that died, counting one more attempt.
UPDATE {schema}.workflows
SET executor_id = %(executor_id)s, attempts = attempts + 1, updated_at = %(now)s
WHERE id = %(id)s AND status = 'PENDING' AND executor_id = %(from_executor)s
RETURNING id, name, status, inputs, output, error, queue, executor_id, app_version, user_name AS "user", parent_id, priority, attempts, created_at, started_at, finished_at, timeout_ms, deadline_at, partition_key, dedup_id, delay_until, expires_at, retries
