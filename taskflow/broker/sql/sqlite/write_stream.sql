-- Append to a workflow's stream: four statements inside one BEGIN IMMEDIATE transaction
-- (one writer at a time, so the next offset read in 2. is still free in 4.).
-- 1. The writer's status (no row: no such workflow, nothing is written).
SELECT status FROM workflows WHERE id = :workflow_id;

-- 2. The last row: the close row is always the last one, so it says whether the stream
-- is closed.
SELECT "offset", value IS NULL
FROM streams
WHERE workflow_id = :workflow_id AND key = :key
ORDER BY "offset" DESC
LIMIT 1;

-- 3. The writing step; when an earlier execution recorded it, nothing is appended.
INSERT INTO steps
    (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
VALUES (:workflow_id, :step_id, :step_name, :output, NULL, NULL, :now, :now)
ON CONFLICT (workflow_id, step_id) DO NOTHING;

-- 4. The value (NULL: the row that closes the stream).
INSERT INTO streams (workflow_id, key, "offset", value, written_at)
VALUES (:workflow_id, :key, :offset, :value, :now)
