-- The oldest start still inside the sliding window of a rate-limited queue (per partition
-- among :keys, or the whole queue with partition ''): room opens again one period after it.
SELECT min(started_at) FROM queue_starts
WHERE queue = :queue AND partition_key IN (SELECT value FROM json_each(:keys))
  AND started_at > :since
