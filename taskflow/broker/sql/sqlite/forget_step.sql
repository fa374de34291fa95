-- Drop a step's recorded error so that a retry of its workflow runs the step again.
DELETE FROM steps
WHERE workflow_id = :workflow_id AND step_id = :step_id AND error IS NOT NULL
RETURNING step_id
