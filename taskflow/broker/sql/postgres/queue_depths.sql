-- Waiting and running workflows per queue and partition (partition NULL when unkeyed).
SELECT queue, partition_key,
       count(*) FILTER (WHERE status = 'ENQUEUED') AS enqueued,
       count(*) FILTER (WHERE status = 'DELAYED') AS delayed,
       count(*) FILTER (WHERE status = 'PENDING') AS running
FROM {schema}.workflows
WHERE status IN ('ENQUEUED', 'DELAYED', 'PENDING') AND queue IS NOT NULL
GROUP BY queue, partition_key
ORDER BY queue, partition_key NULLS FIRST
