-- Waiting and running workflows per queue and partition (partition NULL when unkeyed).
SELECT queue, partition_key,
       sum(status = 'ENQUEUED') AS enqueued,
       sum(status = 'DELAYED') AS delayed,
       sum(status = 'PENDING') AS running
FROM workflows
WHERE status IN ('ENQUEUED', 'DELAYED', 'PENDING') AND queue IS NOT NULL
GROUP BY queue, partition_key
ORDER BY queue, partition_key NULLS FIRST
