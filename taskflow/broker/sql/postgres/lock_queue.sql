-- Serialise claims on one limited queue: the lock is held until the claim commits, so the
-- next claimer's counts include what this one claimed.
SELECT pg_advisory_xact_lock(hashtextextended(%(lock_key)s, 0))
