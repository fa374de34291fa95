-- A workflow-level retry: the running workflow waits (DELAYED) until delay_until, or is
-- runnable again at once (ENQUEUED, waking workers). The attempt is not counted: the next
-- claim adds it back.
WITH retried AS (
    UPDATE {schema}.workflows
    SET status = CASE WHEN %(delay_until)s > %(now)s THEN 'DELAYED' ELSE 'ENQUEUED' END,
        delay_until = %(delay_until)s, retries = retries + 1, executor_id = NULL,
        queue = COALESCE(queue, 'default'), attempts = GREATEST(attempts - 1, 0),
        error = %(error)s, updated_at = %(now)s
    WHERE id = %(id)s AND status = 'PENDING' AND executor_id = %(executor_id)s
    RETURNING id, queue, status
)
SELECT id, CASE WHEN status = 'ENQUEUED' THEN pg_notify(%(channel)s, queue) END FROM retried
