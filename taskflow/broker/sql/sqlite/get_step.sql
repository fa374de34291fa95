SELECT step_id, name, output, error, child_workflow_id, started_at, finished_at
FROM steps
WHERE workflow_id = :workflow_id AND step_id = :step_id
