-- Statements run in order inside one BEGIN IMMEDIATE transaction:
-- 1. Running work of the queue (all, and this executor's) and starts in the rate window.
SELECT (SELECT count(*) FROM workflows WHERE status = 'PENDING' AND queue = :queue),
       (SELECT count(*) FROM workflows
        WHERE status = 'PENDING' AND queue = :queue AND executor_id = :executor_id),
       (SELECT count(*) FROM queue_starts
        WHERE queue = :queue AND partition_key = '' AND started_at > :since);

-- 2. Claim up to :limit (the caller's room), in priority then FIFO order.
UPDATE workflows
SET status = 'PENDING', executor_id = :executor_id, attempts = attempts + 1,
    app_version = COALESCE(app_version, :app_version),
    started_at = COALESCE(started_at, :now),
    expires_at = NULL,
    deadline_at = COALESCE(deadline_at, :now + timeout_ms),
    updated_at = :now
WHERE id IN (
    SELECT id FROM workflows
    WHERE status = 'ENQUEUED' AND partition_key IS NULL AND queue = :queue
      AND (app_version IS NULL OR app_version = :app_version)
      AND (expires_at IS NULL OR expires_at > :now)
    ORDER BY priority, created_at, rowid
    LIMIT :limit
)
RETURNING id, name, status, inputs, output, error, queue, executor_id, app_version, user_name AS "user", parent_id, priority, attempts, created_at, started_at, finished_at, timeout_ms, deadline_at, partition_key, dedup_id, delay_until, expires_at, retries, rowid;

-- 3. On a rate-limited queue, one start in the sliding window per claimed workflow
--    (executemany; partition '' when the queue is not partitioned).
INSERT INTO queue_starts (queue, partition_key, started_at) VALUES (:queue, :key, :now)
