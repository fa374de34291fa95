-- The latest value of a workflow's event key, and whether that workflow exists and has
-- finished (a finished workflow publishes nothing more).
SELECT (SELECT value FROM {schema}.events WHERE workflow_id = %(workflow_id)s AND key = %(key)s),
       (SELECT status FROM {schema}.workflows WHERE id = %(workflow_id)s)
