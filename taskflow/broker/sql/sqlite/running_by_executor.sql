-- How many running workflows of each name every executor owns: running rows are at most
-- every worker's slots, and the partial index on PENDING executor_id holds them.
SELECT executor_id, name, count(*)
FROM workflows
WHERE status = 'PENDING' AND executor_id IS NOT NULL
GROUP BY executor_id, name
ORDER BY executor_id, name
