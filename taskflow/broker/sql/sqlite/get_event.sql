-- The latest value of a workflow's event key, and that workflow's status.
SELECT (SELECT value FROM events WHERE workflow_id = :workflow_id AND key = :key),
       (SELECT status FROM workflows WHERE id = :workflow_id)
