-- Publish the latest value of a workflow's event key in one statement: upsert the value,
-- record the publishing step in the same commit, wake workflows parked waiting for this
-- key, and notify waiters in other processes. Returns the publisher's status (a cancelled
-- workflow stops).
WITH ev AS (
    INSERT INTO {schema}.events (workflow_id, key, value, updated_at)
    VALUES (%(workflow_id)s, %(key)s, %(value)s, %(now)s)
    ON CONFLICT (workflow_id, key) DO UPDATE
    SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at
    RETURNING workflow_id
),
step AS (
    INSERT INTO {schema}.steps
        (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
    SELECT %(workflow_id)s, %(step_id)s, %(step_name)s, 'null', NULL, NULL, %(now)s, %(now)s
    WHERE %(step_id)s::integer IS NOT NULL
    ON CONFLICT (workflow_id, step_id) DO NOTHING
    RETURNING 1
),
woken AS (
    UPDATE {schema}.workflows w
    SET status = 'ENQUEUED', delay_until = NULL, wait_kind = NULL, wait_on = NULL,
        wait_key = NULL, updated_at = %(now)s
    WHERE w.status = 'DELAYED' AND w.wait_on = %(workflow_id)s AND w.wait_kind = 'event'
      AND w.wait_key = %(key)s
    RETURNING w.queue
)
SELECT (SELECT status FROM {schema}.workflows WHERE id = %(workflow_id)s),
       (SELECT count(pg_notify(%(channel)s, q.queue))
        FROM (SELECT DISTINCT queue FROM woken) q),
       (SELECT count(pg_notify(%(wake_channel)s, 'e:' || workflow_id)) FROM ev),
       (SELECT count(*) FROM step)
