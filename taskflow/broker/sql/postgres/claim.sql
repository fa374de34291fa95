-- Record finished work and claim more, in one statement (one round trip, one commit).
-- A data-modifying CTE always runs, even when nothing reads it: with limit 0 this only
-- writes the finishes. Each finish is guarded: still PENDING and owned by this executor.
WITH finished AS (
    UPDATE {schema}.workflows w
    SET status = f.status, output = f.output, error = f.error,
        finished_at = %(now)s, updated_at = %(now)s
    FROM unnest(%(f_ids)s::text[], %(f_statuses)s::text[], %(f_outputs)s::text[],
                %(f_errors)s::text[]) AS f(id, status, output, error)
    WHERE w.id = f.id AND w.status = 'PENDING' AND w.executor_id = %(executor_id)s
    RETURNING w.id
),
-- Lowest priority first (0 = none), FIFO within it: the order of ix_workflows_claim.
picked AS (
    SELECT id
    FROM {schema}.workflows
    WHERE status = 'ENQUEUED'
      AND queue = ANY(%(queues)s::text[])
      AND (app_version IS NULL OR app_version = %(app_version)s)
      AND (expires_at IS NULL OR expires_at > %(now)s)
    ORDER BY priority, created_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE {schema}.workflows w
    SET status = 'PENDING', executor_id = %(executor_id)s, attempts = w.attempts + 1,
        app_version = COALESCE(w.app_version, %(app_version)s),
        started_at = COALESCE(w.started_at, %(now)s),
        deadline_at = COALESCE(w.deadline_at, %(now)s + w.timeout_ms),
        updated_at = %(now)s
    -- ARRAY(...) rather than a join: even a generic plan (LIMIT unknown) then looks the few
    -- picked ids up by primary key instead of hashing the whole table.
    WHERE w.id = ANY(ARRAY(SELECT id FROM picked)) AND w.status = 'ENQUEUED'
    RETURNING w.id, w.name, w.status, w.inputs, w.output, w.error, w.queue, w.executor_id,
              w.app_version, w.user_name, w.parent_id, w.priority, w.attempts, w.created_at,
              w.started_at, w.finished_at, w.timeout_ms, w.deadline_at, w.partition_key,
              w.dedup_id, w.delay_until, w.expires_at, w.retries, w.seq
)
SELECT id, name, status, inputs, output, error, queue, executor_id, app_version, user_name,
       parent_id, priority, attempts, created_at, started_at, finished_at, timeout_ms,
       deadline_at, partition_key, dedup_id, delay_until, expires_at, retries
FROM claimed
ORDER BY priority, created_at, seq
