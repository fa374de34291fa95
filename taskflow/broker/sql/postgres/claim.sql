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
    SELECT id, started_at IS NULL AS fresh
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
        -- Started now, so "expires" (not started by then) no longer applies.
        expires_at = NULL,
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
-- "fresh": claimed for the first time, so no step can be recorded yet and the executor
-- skips loading its history.
SELECT c.id, c.name, c.status, c.inputs, c.output, c.error, c.queue, c.executor_id,
       c.app_version, c.user_name, c.parent_id, c.priority, c.attempts, c.created_at,
       c.started_at, c.finished_at, c.timeout_ms, c.deadline_at, c.partition_key, c.dedup_id,
       c.delay_until, c.expires_at, c.retries, p.fresh
FROM claimed c JOIN picked p ON p.id = c.id
ORDER BY c.priority, c.created_at, c.seq
