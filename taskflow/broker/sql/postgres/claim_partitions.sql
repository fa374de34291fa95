-- Claim from the partitions %(keys)s of one limited, partitioned queue, each locked by this
-- transaction (lock_partitions.sql), every limit applying per partition. Each partition
-- yields at most its room, and the batch takes every partition's first workflow before any
-- partition's second ("turn"), so a deep backlog never delays a shallow one.
WITH running AS (
    SELECT partition_key AS k, count(*) AS n,
           count(*) FILTER (WHERE executor_id = %(executor_id)s) AS mine
    FROM {schema}.workflows
    WHERE status = 'PENDING' AND queue = %(queue)s AND partition_key = ANY(%(keys)s::text[])
    GROUP BY partition_key
),
starts AS (
    SELECT partition_key AS k, count(*) AS n FROM {schema}.queue_starts
    WHERE queue = %(queue)s AND partition_key = ANY(%(keys)s::text[])
      AND started_at > %(since)s
    GROUP BY partition_key
),
room AS (
    SELECT keys.k,
           LEAST(%(limit)s,
                 COALESCE(%(concurrency)s::int - COALESCE(r.n, 0), %(limit)s),
                 COALESCE(%(worker_concurrency)s::int - COALESCE(r.mine, 0), %(limit)s),
                 COALESCE(%(rate_count)s::int - COALESCE(s.n, 0), %(limit)s)) AS n
    FROM unnest(%(keys)s::text[]) AS keys(k)
    LEFT JOIN running r ON r.k = keys.k
    LEFT JOIN starts s ON s.k = keys.k
),
candidates AS (
    SELECT c.id, c.fresh, c.priority, c.created_at, c.seq,
           row_number() OVER (PARTITION BY room.k
                              ORDER BY c.priority, c.created_at, c.seq) AS turn
    FROM room CROSS JOIN LATERAL (
        SELECT id, started_at IS NULL AS fresh, priority, created_at, seq
        FROM {schema}.workflows
        WHERE status = 'ENQUEUED' AND partition_key = room.k AND queue = %(queue)s
          AND (app_version IS NULL OR app_version = %(app_version)s)
          AND (expires_at IS NULL OR expires_at > %(now)s)
        ORDER BY priority, created_at, seq
        LIMIT GREATEST(room.n, 0)
    ) c
),
picked AS (
    SELECT id, fresh FROM candidates
    ORDER BY turn, priority, created_at, seq
    LIMIT %(limit)s
),
claimed AS (
    UPDATE {schema}.workflows w
    SET status = 'PENDING', executor_id = %(executor_id)s, attempts = w.attempts + 1,
        app_version = COALESCE(w.app_version, %(app_version)s),
        started_at = COALESCE(w.started_at, %(now)s),
        expires_at = NULL,
        deadline_at = COALESCE(w.deadline_at, %(now)s + w.timeout_ms),
        updated_at = %(now)s
    WHERE w.id = ANY(ARRAY(SELECT id FROM picked)) AND w.status = 'ENQUEUED'
    RETURNING w.id, w.name, w.status, w.inputs, w.output, w.error, w.queue, w.executor_id,
              w.app_version, w.user_name, w.parent_id, w.priority, w.attempts, w.created_at,
              w.started_at, w.finished_at, w.timeout_ms, w.deadline_at, w.partition_key,
              w.dedup_id, w.delay_until, w.expires_at, w.retries, w.seq
),
logged AS (
    INSERT INTO {schema}.queue_starts (queue, partition_key, started_at)
    SELECT %(queue)s, partition_key, %(now)s FROM claimed WHERE %(rate_count)s::int IS NOT NULL
)
SELECT c.id, c.name, c.status, c.inputs, c.output, c.error, c.queue, c.executor_id,
       c.app_version, c.user_name, c.parent_id, c.priority, c.attempts, c.created_at,
       c.started_at, c.finished_at, c.timeout_ms, c.deadline_at, c.partition_key, c.dedup_id,
       c.delay_until, c.expires_at, c.retries, p.fresh
FROM claimed c JOIN picked p ON p.id = c.id
ORDER BY c.priority, c.created_at, c.seq
