-- Partitions of a queue with waiting work, in key order after %(after)s (a cursor that makes
-- successive claims go round every partition), at most %(max_keys)s of them, each locked for
-- this transaction. A partition locked by another claimer is skipped: that one serves it.
-- The recursive walk reads one index entry per partition, however deep each backlog is.
WITH RECURSIVE keys(k) AS (
    SELECT (SELECT min(partition_key) FROM {schema}.workflows
            WHERE status = 'ENQUEUED' AND partition_key IS NOT NULL
              AND queue = %(queue)s AND partition_key > %(after)s)
    UNION ALL
    SELECT (SELECT min(w.partition_key) FROM {schema}.workflows w
            WHERE w.status = 'ENQUEUED' AND w.partition_key IS NOT NULL
              AND w.queue = %(queue)s AND w.partition_key > keys.k)
    FROM keys WHERE keys.k IS NOT NULL
),
found AS (
    SELECT k FROM keys WHERE k IS NOT NULL LIMIT %(max_keys)s
)
SELECT k, pg_try_advisory_xact_lock(hashtextextended(%(lock_prefix)s || k, 0)) AS locked
FROM found
