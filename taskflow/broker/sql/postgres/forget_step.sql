-- Drop a step's recorded error so that a retry of its workflow runs the step again.
DELETE FROM {schema}.steps
WHERE workflow_id = %(workflow_id)s AND step_id = %(step_id)s AND error IS NOT NULL
RETURNING step_id
