-- Publish the latest value of a workflow's event key: four statements inside one
-- BEGIN IMMEDIATE transaction.
-- 1. The value.
INSERT INTO events (workflow_id, key, value, updated_at)
VALUES (:workflow_id, :key, :value, :now)
ON CONFLICT (workflow_id, key) DO UPDATE
SET value = excluded.value, updated_at = excluded.updated_at;

-- 2. The publishing step.
INSERT INTO steps
    (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
SELECT :workflow_id, :step_id, :step_name, 'null', NULL, NULL, :now, :now
WHERE :step_id IS NOT NULL
ON CONFLICT (workflow_id, step_id) DO NOTHING;

-- 3. Wake workflows parked waiting for this key.
UPDATE workflows
SET status = 'ENQUEUED', delay_until = NULL, wait_kind = NULL, wait_on = NULL,
    wait_key = NULL, updated_at = :now
WHERE status = 'DELAYED' AND wait_on = :workflow_id AND wait_kind = 'event'
  AND wait_key = :key;

-- 4. The publisher's status.
SELECT status FROM workflows WHERE id = :workflow_id
