-- The running workflows of one executor, with their parents' status.
SELECT w.id, w.name, w.executor_id, w.queue, w.parent_id, p.status
FROM {schema}.workflows w
LEFT JOIN {schema}.workflows p ON p.id = w.parent_id
WHERE w.status = 'PENDING' AND w.executor_id = %(executor_id)s
ORDER BY w.created_at, w.id
