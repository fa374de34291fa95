-- Queue maintenance in one statement: due DELAYED rows become ENQUEUED (waking workers once
-- per queue), waiting rows past expires_at become CANCELLED, and the next due time is
-- reported. The two updates touch disjoint rows (an expired row is never promoted); the
-- next-due read sees the rows as they were before this statement, hence its filters.
WITH promoted AS (
    UPDATE {schema}.workflows
    SET status = 'ENQUEUED', updated_at = %(now)s
    WHERE status = 'DELAYED' AND delay_until <= %(now)s
      AND (expires_at IS NULL OR expires_at > %(now)s)
    RETURNING queue
),
expired AS (
    UPDATE {schema}.workflows
    SET status = 'CANCELLED', finished_at = %(now)s, updated_at = %(now)s, error = NULL,
        executor_id = NULL
    WHERE expires_at IS NOT NULL AND status IN ('ENQUEUED', 'DELAYED')
      AND expires_at <= %(now)s
    RETURNING id
),
woken AS (
    SELECT count(pg_notify(%(channel)s, q.queue)) AS n
    FROM (SELECT DISTINCT queue FROM promoted) q
)
SELECT (SELECT count(*) FROM promoted),
       (SELECT count(*) FROM expired),
       (SELECT min(delay_until) FROM {schema}.workflows
        WHERE status = 'DELAYED' AND delay_until > %(now)s
          AND (expires_at IS NULL OR expires_at > %(now)s)),
       (SELECT n FROM woken)
