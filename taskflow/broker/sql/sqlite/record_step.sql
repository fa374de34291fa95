-- Checkpoint one step outcome (one commit). The first writer of a (workflow, step) wins; a
-- later one inserts nothing and must adopt the recorded outcome.
INSERT INTO steps
    (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
VALUES
    (:workflow_id, :step_id, :name, :output, :error, :child_workflow_id, :started_at,
     :finished_at)
ON CONFLICT (workflow_id, step_id) DO NOTHING
