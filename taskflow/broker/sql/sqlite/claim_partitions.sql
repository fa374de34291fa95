-- Statements run in order inside one BEGIN IMMEDIATE transaction, for the partitions
-- :keys (a JSON list) of one limited, partitioned queue:
-- 1. Running work per partition (all, and this executor's).
SELECT partition_key, count(*), sum(executor_id = :executor_id)
FROM workflows
WHERE status = 'PENDING' AND queue = :queue
  AND partition_key IN (SELECT value FROM json_each(:keys))
GROUP BY partition_key;

-- 2. Starts per partition in the rate window.
SELECT partition_key, count(*) FROM queue_starts
WHERE queue = :queue AND partition_key IN (SELECT value FROM json_each(:keys))
  AND started_at > :since
GROUP BY partition_key;

-- 3. One partition's next workflows, up to its room (run per partition).
SELECT id, priority, created_at, rowid
FROM workflows
WHERE status = 'ENQUEUED' AND queue = :queue AND partition_key = :key
  AND (app_version IS NULL OR app_version = :app_version)
  AND (expires_at IS NULL OR expires_at > :now)
ORDER BY priority, created_at, rowid
LIMIT :limit;

-- 4. Claim the chosen ids (a JSON list).
UPDATE workflows
SET status = 'PENDING', executor_id = :executor_id, attempts = attempts + 1,
    app_version = COALESCE(app_version, :app_version),
    started_at = COALESCE(started_at, :now),
    expires_at = NULL,
    deadline_at = COALESCE(deadline_at, :now + timeout_ms),
    updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'ENQUEUED'
RETURNING id, name, status, inputs, output, error, queue, executor_id, app_version, user_name AS "user", parent_id, priority, attempts, created_at, started_at, finished_at, timeout_ms, deadline_at, partition_key, dedup_id, delay_until, expires_at, retries, rowid;

-- 5. On a rate-limited queue, one start in the sliding window per claimed workflow
--    (executemany; partition '' when the queue is not partitioned).
INSERT INTO queue_starts (queue, partition_key, started_at) VALUES (:queue, :key, :now)
