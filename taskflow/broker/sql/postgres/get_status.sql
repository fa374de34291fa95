SELECT status FROM {schema}.workflows WHERE id = %(workflow_id)s
