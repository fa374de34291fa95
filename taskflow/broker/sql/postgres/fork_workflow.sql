-- Fork a workflow in one statement (one commit): a new ENQUEUED workflow with the original's
-- name, inputs, user, priority and timeout, on %(queue)s, with the given app version or the
-- original's, and copies of what the original recorded before step %(start_step)s:
--
-- * its steps with a lower step id (outputs, errors, child ids), which the fork replays;
-- * the events and stream values it wrote before that step started, since the replayed
--   steps do not write them again. "Before" is by the first recorded start of a step at or
--   after %(start_step)s (cut.at; none recorded: everything is copied). In the millisecond
--   of cut.at itself a row is copied only if a copied step wrote it: a set_event step
--   started then (events), or the write_stream or close_stream step that recorded its
--   offset (streams).
--
-- A fork holding copied steps is "started" (started_at = now): a claim of a row never
-- started skips loading its history, which would run the copied steps again. Messages are
-- not copied. An existing %(new_id)s writes nothing. Workers of the queue are woken. The
-- first column is NULL when the original does not exist.
WITH src AS (
    SELECT id, name, inputs, user_name, priority, timeout_ms, app_version
    FROM {schema}.workflows
    WHERE id = %(id)s
),
cut AS (
    SELECT min(COALESCE(started_at, finished_at)) AS at
    FROM {schema}.steps
    WHERE workflow_id = %(id)s AND step_id >= %(start_step)s
),
boundary AS (
    SELECT s.name, s.output
    FROM {schema}.steps s, cut
    WHERE s.workflow_id = %(id)s AND s.step_id < %(start_step)s AND s.started_at = cut.at
),
ins AS (
    INSERT INTO {schema}.workflows
        (id, name, status, queue, priority, partition_key, inputs, app_version, user_name,
         attempts, created_at, updated_at, started_at, timeout_ms)
    SELECT %(new_id)s, name, 'ENQUEUED', %(queue)s, priority, %(partition_key)s, inputs,
           COALESCE(%(app_version)s, app_version), user_name, 0, %(now)s, %(now)s,
           CASE WHEN EXISTS (SELECT 1 FROM {schema}.steps
                             WHERE workflow_id = %(id)s AND step_id < %(start_step)s)
                THEN %(now)s END,
           timeout_ms
    FROM src
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
copied_steps AS (
    INSERT INTO {schema}.steps
        (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
    SELECT ins.id, s.step_id, s.name, s.output, s.error, s.child_workflow_id, s.started_at,
           s.finished_at
    FROM ins, {schema}.steps s
    WHERE s.workflow_id = %(id)s AND s.step_id < %(start_step)s
    RETURNING 1
),
copied_events AS (
    INSERT INTO {schema}.events (workflow_id, key, value, updated_at)
    SELECT ins.id, e.key, e.value, e.updated_at
    FROM ins, cut, {schema}.events e
    WHERE e.workflow_id = %(id)s
      AND (cut.at IS NULL OR e.updated_at < cut.at
           OR (e.updated_at = cut.at
               AND EXISTS (SELECT 1 FROM boundary b WHERE b.name = 'taskflow.set_event')))
    RETURNING 1
),
copied_streams AS (
    INSERT INTO {schema}.streams (workflow_id, key, "offset", value, written_at)
    SELECT ins.id, t.key, t."offset", t.value, t.written_at
    FROM ins, cut, {schema}.streams t
    WHERE t.workflow_id = %(id)s
      AND (cut.at IS NULL OR t.written_at < cut.at
           OR (t.written_at = cut.at
               AND EXISTS (SELECT 1 FROM boundary b
                           WHERE b.name IN ('taskflow.write_stream', 'taskflow.close_stream')
                             AND b.output = t."offset"::text)))
    RETURNING 1
)
SELECT (SELECT name FROM src),
       (SELECT count(*) FROM ins),
       (SELECT count(*) FROM copied_steps),
       (SELECT count(*) FROM copied_events),
       (SELECT count(*) FROM copied_streams),
       (SELECT count(pg_notify(%(channel)s, %(queue)s)) FROM ins)
