-- Fork a workflow: five statements, run in one BEGIN IMMEDIATE transaction (see the
-- Postgres file for the rules; they are the same).
-- 1. The original's name (no row: it does not exist).
SELECT name FROM workflows WHERE id = :id;

-- 2. The new ENQUEUED workflow (nothing when :new_id exists; then 3-5 are skipped),
--    "started" when it holds copied steps.
INSERT INTO workflows
    (id, name, status, queue, priority, partition_key, inputs, app_version, user_name,
     attempts, created_at, updated_at, started_at, timeout_ms)
SELECT :new_id, name, 'ENQUEUED', :queue, priority, :partition_key, inputs,
       COALESCE(:app_version, app_version), user_name, 0, :now, :now,
       CASE WHEN EXISTS (SELECT 1 FROM steps
                         WHERE workflow_id = :id AND step_id < :start_step)
            THEN :now END,
       timeout_ms
FROM workflows
WHERE id = :id
ON CONFLICT (id) DO NOTHING;

-- 3. The steps before :start_step.
INSERT INTO steps
    (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
SELECT :new_id, step_id, name, output, error, child_workflow_id, started_at, finished_at
FROM steps
WHERE workflow_id = :id AND step_id < :start_step;

-- 4. The events written before step :start_step started (cut), or in its millisecond by a
--    copied set_event step.
WITH cut AS (
    SELECT min(COALESCE(started_at, finished_at)) AS at
    FROM steps
    WHERE workflow_id = :id AND step_id >= :start_step
)
INSERT INTO events (workflow_id, key, value, updated_at)
SELECT :new_id, e.key, e.value, e.updated_at
FROM events e, cut
WHERE e.workflow_id = :id
  AND (cut.at IS NULL OR e.updated_at < cut.at
       OR (e.updated_at = cut.at
           AND EXISTS (SELECT 1 FROM steps s
                       WHERE s.workflow_id = :id AND s.step_id < :start_step
                         AND s.started_at = cut.at AND s.name = 'taskflow.set_event')));

-- 5. The stream rows written before it, or in its millisecond by the copied step that
--    recorded their offset.
WITH cut AS (
    SELECT min(COALESCE(started_at, finished_at)) AS at
    FROM steps
    WHERE workflow_id = :id AND step_id >= :start_step
)
INSERT INTO streams (workflow_id, key, "offset", value, written_at)
SELECT :new_id, t.key, t."offset", t.value, t.written_at
FROM streams t, cut
WHERE t.workflow_id = :id
  AND (cut.at IS NULL OR t.written_at < cut.at
       OR (t.written_at = cut.at
           AND EXISTS (SELECT 1 FROM steps s
                       WHERE s.workflow_id = :id AND s.step_id < :start_step
                         AND s.started_at = cut.at
                         AND s.name IN ('taskflow.write_stream', 'taskflow.close_stream')
                         AND s.output = CAST(t."offset" AS TEXT))));
