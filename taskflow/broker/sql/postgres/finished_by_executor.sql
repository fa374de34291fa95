-- What each executor finished since a time, per status. A range of ix_workflows_finished
-- (finished_at, only finished rows): the cost follows the rows finished in the window, not
-- the size of the table.
SELECT executor_id, status, count(*)
FROM {schema}.workflows
WHERE finished_at >= %(since)s AND executor_id IS NOT NULL
GROUP BY executor_id, status
ORDER BY executor_id, status
