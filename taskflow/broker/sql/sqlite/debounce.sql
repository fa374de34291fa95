-- The rest of a debounce: three statements, run inside the BEGIN IMMEDIATE transaction of
-- debounce_lock.sql, which returned the workflow the key's row names (:current_id) and the
-- first call's time.
-- 1. Push that workflow back if it is still waiting: DELAYED and never started (a
--    workflow-level retry or a parked workflow is DELAYED too, but has started).
UPDATE workflows
SET inputs = :inputs, delay_until = :push_until,
    status = CASE WHEN :push_until > :now THEN 'DELAYED' ELSE 'ENQUEUED' END,
    updated_at = :now
WHERE id = :current_id AND status = 'DELAYED' AND started_at IS NULL
RETURNING id, status, delay_until;

-- 2. Otherwise a new cycle: write the new workflow as an enqueue with a countdown would
--    (an existing id writes nothing)...
INSERT INTO workflows
    (id, name, status, queue, priority, inputs, app_version, user_name, parent_id,
     attempts, created_at, updated_at, timeout_ms, delay_until)
VALUES
    (:new_id, :name, CASE WHEN :new_until > :now THEN 'DELAYED' ELSE 'ENQUEUED' END,
     :queue, :priority, :inputs, :app_version, :user, :parent_id,
     0, :created_at, :now, :timeout_ms, :new_until)
ON CONFLICT DO NOTHING
RETURNING id, status, delay_until;

-- 3. ...and make the key's row point at it from now on.
UPDATE debounces
SET workflow_id = :new_id, first_at = :now, updated_at = :now
WHERE workflow_name = :name AND debounce_key = :key
