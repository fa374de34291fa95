DELETE FROM {schema}.executors WHERE executor_id = %(executor_id)s
