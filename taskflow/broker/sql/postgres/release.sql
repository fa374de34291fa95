-- Give running workflows of one executor back to their queue (guarded by owner and status),
-- waking workers once per queue. Without count_attempt the attempt the next claim adds is
-- undone here.
WITH released AS (
    UPDATE {schema}.workflows
    SET status = 'ENQUEUED', executor_id = NULL,
        queue = COALESCE(queue, %(default_queue)s),
        attempts = CASE WHEN %(count_attempt)s THEN attempts ELSE GREATEST(attempts - 1, 0) END,
        updated_at = %(now)s
    WHERE id = ANY(%(ids)s::text[]) AND status = 'PENDING' AND executor_id = %(executor_id)s
    RETURNING id, queue
)
SELECT id, pg_notify(%(channel)s, queue) FROM released
