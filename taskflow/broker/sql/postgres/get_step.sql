SELECT step_id, name, output, error, child_workflow_id, started_at, finished_at
FROM {schema}.steps
WHERE workflow_id = %(workflow_id)s AND step_id = %(step_id)s
