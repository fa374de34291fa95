-- The oldest start still inside the sliding window of a rate-limited queue (per partition
-- among %(keys)s, or the whole queue with partition ''): room opens again one period after it.
SELECT min(started_at) FROM {schema}.queue_starts
WHERE queue = %(queue)s AND partition_key = ANY(%(keys)s::text[]) AND started_at > %(since)s
