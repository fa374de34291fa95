-- Park a running workflow that waits: it gives back its worker slot and its queue's
-- concurrency slot (DELAYED rows are not running) until delay_until (NULL: no time limit)
-- or until what it waits for arrives. If that is already there, it goes straight back to
-- its queue instead. Guarded like a finish: still PENDING and owned by this executor. The
-- attempt is not counted: the next claim adds it back.
WITH ready AS (
    SELECT (%(kind)s = 'recv' AND EXISTS (
                SELECT 1 FROM {schema}.messages m
                WHERE m.destination_id = %(id)s AND m.topic = %(wait_key)s
                  AND m.consumed_at IS NULL))
        OR (%(kind)s = 'event' AND EXISTS (
                SELECT 1 FROM {schema}.events e
                WHERE e.workflow_id = %(wait_on)s AND e.key = %(wait_key)s))
        OR (%(kind)s = 'child' AND EXISTS (
                SELECT 1 FROM {schema}.workflows c
                WHERE c.id = %(wait_on)s
                  AND c.status IN ('SUCCESS', 'ERROR', 'CANCELLED',
                                   'MAX_RECOVERY_ATTEMPTS_EXCEEDED'))) AS now_ready
),
parked AS (
    UPDATE {schema}.workflows w
    SET status = CASE WHEN r.now_ready THEN 'ENQUEUED' ELSE 'DELAYED' END,
        delay_until = CASE WHEN r.now_ready THEN NULL ELSE %(until)s::bigint END,
        wait_kind = CASE WHEN r.now_ready THEN NULL ELSE %(kind)s END,
        wait_on = CASE WHEN r.now_ready THEN NULL ELSE %(wait_on)s END,
        wait_key = CASE WHEN r.now_ready THEN NULL ELSE %(wait_key)s END,
        executor_id = NULL, attempts = GREATEST(w.attempts - 1, 0),
        queue = COALESCE(w.queue, %(default_queue)s), updated_at = %(now)s
    FROM ready r
    WHERE w.id = %(id)s AND w.status = 'PENDING' AND w.executor_id = %(executor_id)s
    RETURNING w.status, w.queue
)
SELECT p.status, CASE WHEN p.status = 'ENQUEUED' THEN pg_notify(%(channel)s, p.queue) END
FROM parked p
