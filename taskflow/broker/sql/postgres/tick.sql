-- Queue maintenance in one statement: running workflows past their durable timeout become
-- CANCELLED with every descendant still waiting or running (as cancel.sql does), due DELAYED
-- rows become ENQUEUED (waking workers once per queue), waiting rows past expires_at become
-- CANCELLED, and the next due time is reported. The updates touch disjoint rows (an expired
-- row is never promoted, a row of a timed-out tree is neither promoted nor expired), since
-- one statement may not update a row twice; the next-due read sees the rows as they were
-- before this statement, hence its filters. The timed-out roots are found through the
-- partial index on running deadlines.
WITH RECURSIVE late(id) AS (
    SELECT id FROM {schema}.workflows
    WHERE status = 'PENDING' AND deadline_at IS NOT NULL AND deadline_at <= %(now)s
    UNION
    SELECT c.id FROM {schema}.workflows c JOIN late l ON c.parent_id = l.id
),
timed_out AS (
    UPDATE {schema}.workflows
    SET status = 'CANCELLED', output = NULL, error = NULL, finished_at = %(now)s,
        updated_at = %(now)s
    WHERE id IN (SELECT id FROM late) AND status IN ('ENQUEUED', 'DELAYED', 'PENDING')
    RETURNING id
),
promoted AS (
    UPDATE {schema}.workflows
    SET status = 'ENQUEUED', updated_at = %(now)s
    WHERE status = 'DELAYED' AND delay_until <= %(now)s
      AND (expires_at IS NULL OR expires_at > %(now)s)
      AND id NOT IN (SELECT id FROM late)
    RETURNING queue
),
expired AS (
    UPDATE {schema}.workflows
    SET status = 'CANCELLED', finished_at = %(now)s, updated_at = %(now)s, error = NULL,
        executor_id = NULL
    WHERE expires_at IS NOT NULL AND status IN ('ENQUEUED', 'DELAYED')
      AND expires_at <= %(now)s
      AND id NOT IN (SELECT id FROM late)
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
          AND (expires_at IS NULL OR expires_at > %(now)s)
          AND id NOT IN (SELECT id FROM late)),
       (SELECT n FROM woken),
       (SELECT count(*) FROM timed_out)
