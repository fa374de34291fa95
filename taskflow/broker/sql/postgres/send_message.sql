-- Deliver one message in one statement: insert it (a send replayed by a workflow carries the
-- same send_key and inserts nothing), record the sending workflow's step in the same commit
-- when there is one, wake the destination if it is parked waiting for this topic, and
-- notify waiters in other processes. Nothing is written when the destination does not exist.
WITH dest AS (
    SELECT id FROM {schema}.workflows WHERE id = %(destination_id)s
),
msg AS (
    INSERT INTO {schema}.messages (destination_id, topic, message, send_key, created_at)
    SELECT id, %(topic)s, %(message)s, %(send_key)s, %(now)s FROM dest
    ON CONFLICT (send_key) WHERE send_key IS NOT NULL DO NOTHING
    RETURNING seq
),
step AS (
    INSERT INTO {schema}.steps
        (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
    SELECT %(sender_id)s, %(step_id)s, %(step_name)s, 'null', NULL, NULL, %(now)s, %(now)s
    FROM dest WHERE %(sender_id)s::text IS NOT NULL
    ON CONFLICT (workflow_id, step_id) DO NOTHING
    RETURNING 1
),
woken AS (
    UPDATE {schema}.workflows w
    SET status = 'ENQUEUED', delay_until = NULL, wait_kind = NULL, wait_on = NULL,
        wait_key = NULL, updated_at = %(now)s
    WHERE w.id = %(destination_id)s AND w.status = 'DELAYED' AND w.wait_kind = 'recv'
      AND w.wait_key = %(topic)s AND EXISTS (SELECT 1 FROM msg)
    RETURNING w.queue
)
SELECT (SELECT count(*) FROM dest) AS found,
       (SELECT count(*) FROM msg) AS inserted,
       (SELECT count(pg_notify(%(channel)s, queue)) FROM woken) AS woken,
       (SELECT count(pg_notify(%(wake_channel)s, 'm:' || id)) FROM dest
        WHERE EXISTS (SELECT 1 FROM msg)) AS notified,
       (SELECT status FROM {schema}.workflows WHERE id = %(sender_id)s) AS sender_status
