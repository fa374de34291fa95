-- Second statement of a debounce, after debounce_lock.sql locked the key's row and returned
-- the workflow it names (:current_id) and the first call's time. Either that workflow is
-- still waiting (DELAYED, never started: a workflow-level retry or a parked workflow is
-- DELAYED too, but has started) and takes this call's inputs and delay, or a new cycle
-- begins: the new workflow is written as an enqueue with a countdown would write it, and
-- the row points at it from now on. The update is judged on the newest version of the row,
-- so a workflow a tick promoted (or a worker claimed) meanwhile is never pushed back.
-- Workers are woken when the workflow is runnable at once (its delay is already over).
WITH pushed AS (
    UPDATE {schema}.workflows
    SET inputs = %(inputs)s, delay_until = %(push_until)s,
        status = CASE WHEN %(push_until)s::bigint > %(now)s::bigint THEN 'DELAYED' ELSE 'ENQUEUED' END,
        updated_at = %(now)s
    WHERE id = %(current_id)s AND status = 'DELAYED' AND started_at IS NULL
    RETURNING id, queue, status, delay_until
),
created AS (
    INSERT INTO {schema}.workflows
        (id, name, status, queue, priority, inputs, app_version, user_name, parent_id,
         attempts, created_at, updated_at, timeout_ms, delay_until)
    SELECT %(new_id)s::text, %(name)s::text,
           CASE WHEN %(new_until)s::bigint > %(now)s::bigint THEN 'DELAYED' ELSE 'ENQUEUED' END,
           %(queue)s::text, %(priority)s::integer, %(inputs)s::text, %(app_version)s::text,
           %(user)s::text, %(parent_id)s::text, 0, %(created_at)s::bigint, %(now)s::bigint,
           %(timeout_ms)s::bigint, %(new_until)s::bigint
    WHERE NOT EXISTS (SELECT 1 FROM pushed)
    ON CONFLICT DO NOTHING
    RETURNING id, queue, status, delay_until
),
-- Runs whether or not the query reads it, as every data-modifying WITH does.
tracked AS (
    UPDATE {schema}.debounces
    SET workflow_id = %(new_id)s, first_at = %(now)s, updated_at = %(now)s
    WHERE workflow_name = %(name)s AND debounce_key = %(key)s
      AND NOT EXISTS (SELECT 1 FROM pushed)
    RETURNING workflow_id
),
written AS (
    SELECT id, queue, status, delay_until, true AS was_pushed FROM pushed
    UNION ALL
    SELECT id, queue, status, delay_until, false FROM created
)
SELECT COALESCE(w.id, %(new_id)s), COALESCE(w.was_pushed, false), w.id IS NOT NULL,
       w.status, w.delay_until,
       CASE WHEN w.status = 'ENQUEUED' THEN pg_notify(%(channel)s, w.queue) END
FROM (SELECT 1) one LEFT JOIN written w ON true
