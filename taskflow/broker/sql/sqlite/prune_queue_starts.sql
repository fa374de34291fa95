-- Forget starts that no sliding window can count any more.
DELETE FROM queue_starts WHERE queue = :queue AND started_at <= :since
