-- Write a new workflow row; the id is the idempotency key, so an existing id writes nothing.
INSERT INTO workflows
    (id, name, status, queue, priority, inputs, executor_id, app_version, user_name, parent_id,
     attempts, created_at, updated_at, started_at, timeout_ms, deadline_at)
VALUES
    (:id, :name, :status, :queue, :priority, :inputs, :executor_id, :app_version, :user,
     :parent_id, :attempts, :now, :now, :started_at, :timeout_ms, :deadline_at)
ON CONFLICT (id) DO NOTHING
RETURNING id
