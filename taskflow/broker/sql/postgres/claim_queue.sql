-- Claim from one limited queue that is not partitioned. The caller holds the queue's lock
-- (lock_queue.sql, same transaction) and this statement's snapshot is taken after it was
-- granted, so no other claimer's work can be missing from the counts.
WITH running AS (
    SELECT count(*) AS n, count(*) FILTER (WHERE executor_id = %(executor_id)s) AS mine
    FROM {schema}.workflows
    WHERE status = 'PENDING' AND queue = %(queue)s
),
starts AS (
    SELECT count(*) AS n FROM {schema}.queue_starts
    WHERE queue = %(queue)s AND partition_key = '' AND started_at > %(since)s
),
room AS (
    SELECT LEAST(%(limit)s,
                 COALESCE(%(concurrency)s::int - r.n, %(limit)s),
                 COALESCE(%(worker_concurrency)s::int - r.mine, %(limit)s),
                 COALESCE(%(rate_count)s::int - s.n, %(limit)s)) AS n
    FROM running r, starts s
),
picked AS (
    SELECT id, started_at IS NULL AS fresh
    FROM {schema}.workflows
    WHERE status = 'ENQUEUED' AND partition_key IS NULL AND queue = %(queue)s
      AND (app_version IS NULL OR app_version = %(app_version)s)
      AND (expires_at IS NULL OR expires_at > %(now)s)
    ORDER BY priority, created_at, seq
    LIMIT (SELECT GREATEST(n, 0) FROM room)
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
-- Every claim of a rate-limited queue is a start in its sliding window.
logged AS (
    INSERT INTO {schema}.queue_starts (queue, partition_key, started_at)
    SELECT %(queue)s, '', %(now)s FROM claimed WHERE %(rate_count)s::int IS NOT NULL
)
SELECT c.id, c.name, c.status, c.inputs, c.output, c.error, c.queue, c.executor_id,
       c.app_version, c.user_name, c.parent_id, c.priority, c.attempts, c.created_at,
       c.started_at, c.finished_at, c.timeout_ms, c.deadline_at, c.partition_key, c.dedup_id,
       c.delay_until, c.expires_at, c.retries, p.fresh
FROM claimed c JOIN picked p ON p.id = c.id
ORDER BY c.priority, c.created_at, c.seq
