-- Two statements, run in order inside one BEGIN IMMEDIATE transaction (one writer at a
-- time, so concurrent claimers never get the same row).
-- 1. Record each finished workflow (executemany), guarded: still PENDING and owned by the
--    executor reporting it.
UPDATE workflows
SET status = :status, output = :output, error = :error, finished_at = :now, updated_at = :now
WHERE id = :id AND status = 'PENDING' AND executor_id = :executor_id;

-- 2. Claim up to :limit runnable workflows, lowest priority first (0 = none), FIFO within
--    it: the order of ix_workflows_claim, whose last, implicit column is the rowid.
--    RETURNING gives no order: the caller sorts by (priority, created_at, rowid).
UPDATE workflows
SET status = 'PENDING', executor_id = :executor_id, attempts = attempts + 1,
    app_version = COALESCE(app_version, :app_version),
    started_at = COALESCE(started_at, :now),
    -- Started now, so "expires" (not started by then) no longer applies.
    expires_at = NULL,
    deadline_at = COALESCE(deadline_at, :now + timeout_ms),
    updated_at = :now
WHERE id IN (
    SELECT id FROM workflows
    WHERE status = 'ENQUEUED'
      AND queue IN (SELECT value FROM json_each(:queues))
      AND (app_version IS NULL OR app_version = :app_version)
      AND (expires_at IS NULL OR expires_at > :now)
    ORDER BY priority, created_at, rowid
    LIMIT :limit
)
RETURNING id, name, status, inputs, output, error, queue, executor_id, app_version, user_name AS "user", parent_id, priority, attempts, created_at, started_at, finished_at, timeout_ms, deadline_at, partition_key, dedup_id, delay_until, expires_at, retries, rowid
