-- Partitions of a queue with waiting work, in key order after :after (a cursor that makes
-- successive claims go round every partition), at most :max_keys of them. One index probe
-- per partition, however deep each backlog is. No lock: BEGIN IMMEDIATE holds the database.
WITH RECURSIVE keys(k) AS (
    SELECT (SELECT min(partition_key) FROM workflows
            WHERE status = 'ENQUEUED' AND partition_key IS NOT NULL
              AND queue = :queue AND partition_key > :after)
    UNION ALL
    SELECT (SELECT min(w.partition_key) FROM workflows w
            WHERE w.status = 'ENQUEUED' AND w.partition_key IS NOT NULL
              AND w.queue = :queue AND w.partition_key > keys.k)
    FROM keys WHERE keys.k IS NOT NULL
    LIMIT :max_keys + 1
)
SELECT k, 1 FROM keys WHERE k IS NOT NULL LIMIT :max_keys
