-- Queue maintenance in one statement: running (or parked) workflows past their durable
-- timeout become CANCELLED with every descendant still waiting or running (as cancel.sql
-- does), due DELAYED rows become ENQUEUED (waking workers once per queue), parked workflows
-- whose message, event or child result is there become ENQUEUED (the polling fallback of
-- the wakeups written by send, set_event and park), waiting rows past expires_at become
-- CANCELLED, and the next due time is reported. The updates touch disjoint rows (an expired
-- row is never promoted, a row of a timed-out tree is neither promoted nor expired), since
-- one statement may not update a row twice; the next-due read sees the rows as they were
-- before this statement, hence its filters. The timed-out roots are found through the
-- partial index on running deadlines.
WITH RECURSIVE late(id) AS (
    SELECT id FROM {schema}.workflows
    WHERE status IN ('PENDING', 'DELAYED') AND deadline_at IS NOT NULL
      AND deadline_at <= %(now)s
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
    SET status = 'ENQUEUED', updated_at = %(now)s, wait_kind = NULL, wait_on = NULL,
        wait_key = NULL
    WHERE status = 'DELAYED' AND delay_until <= %(now)s
      AND (expires_at IS NULL OR expires_at > %(now)s)
      AND id NOT IN (SELECT id FROM late)
    RETURNING queue
),
-- Parked waiters whose wait is over (ix_workflows_waiting holds only them); rows due anyway
-- are left to "promoted".
unparked AS (
    UPDATE {schema}.workflows w
    SET status = 'ENQUEUED', updated_at = %(now)s, delay_until = NULL, wait_kind = NULL,
        wait_on = NULL, wait_key = NULL
    WHERE w.status = 'DELAYED' AND w.wait_on IS NOT NULL
      AND (w.delay_until IS NULL OR w.delay_until > %(now)s)
      AND w.id NOT IN (SELECT id FROM late)
      AND ((w.wait_kind = 'recv' AND EXISTS (
                SELECT 1 FROM {schema}.messages m
                WHERE m.destination_id = w.id AND m.topic = w.wait_key
                  AND m.consumed_at IS NULL))
           OR (w.wait_kind = 'event' AND EXISTS (
                SELECT 1 FROM {schema}.events e
                WHERE e.workflow_id = w.wait_on AND e.key = w.wait_key))
           OR (w.wait_kind = 'child' AND EXISTS (
                SELECT 1 FROM {schema}.workflows c
                WHERE c.id = w.wait_on
                  AND c.status IN ('SUCCESS', 'ERROR', 'CANCELLED',
                                   'MAX_RECOVERY_ATTEMPTS_EXCEEDED'))))
    RETURNING w.queue
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
    FROM (SELECT queue FROM promoted UNION SELECT queue FROM unparked) q
)
SELECT (SELECT count(*) FROM promoted) + (SELECT count(*) FROM unparked),
       (SELECT count(*) FROM expired),
       (SELECT min(delay_until) FROM {schema}.workflows
        WHERE status = 'DELAYED' AND delay_until > %(now)s
          AND (expires_at IS NULL OR expires_at > %(now)s)
          AND id NOT IN (SELECT id FROM late)),
       (SELECT n FROM woken),
       (SELECT count(*) FROM timed_out)
