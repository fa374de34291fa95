-- A workflow-level retry: the running workflow waits (DELAYED) until delay_until, or is
-- runnable again at once (ENQUEUED). The attempt is not counted: the next claim adds it back.
UPDATE workflows
SET status = CASE WHEN :delay_until > :now THEN 'DELAYED' ELSE 'ENQUEUED' END,
    delay_until = :delay_until, retries = retries + 1, executor_id = NULL,
    queue = COALESCE(queue, 'default'), attempts = MAX(attempts - 1, 0),
    error = :error, updated_at = :now
WHERE id = :id AND status = 'PENDING' AND executor_id = :executor_id
RETURNING id
