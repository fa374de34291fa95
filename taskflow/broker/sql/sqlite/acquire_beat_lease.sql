-- Take or renew the beat lease in one statement. Taken when nobody holds it or the lease
-- ended before now (the term grows: fires decided under the old term are refused); renewed,
-- term unchanged, when the caller holds it already. A row (the term) returns only when the
-- caller holds the lease afterwards.
INSERT INTO beat_leader AS b (name, holder, term, lease_until, renewed_at)
VALUES ('beat', :holder, 1, :lease_until, :now)
ON CONFLICT (name) DO UPDATE SET
    term = CASE WHEN b.holder = excluded.holder THEN b.term ELSE b.term + 1 END,
    holder = excluded.holder,
    lease_until = excluded.lease_until,
    renewed_at = excluded.renewed_at
WHERE b.holder = excluded.holder OR b.holder IS NULL OR b.lease_until < excluded.renewed_at
RETURNING term
