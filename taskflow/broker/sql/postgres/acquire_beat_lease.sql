-- Take or renew the beat lease in one statement. Taken when nobody holds it or the lease
-- ended before now (the term grows: fires decided under the old term are refused); renewed,
-- term unchanged, when the caller holds it already. The upsert locks the row, so two beats
-- asking at once are serialised and the second sees the first's lease. A row (the term)
-- returns only when the caller holds the lease afterwards.
INSERT INTO {schema}.beat_leader AS b (name, holder, term, lease_until, renewed_at)
VALUES ('beat', %(holder)s, 1, %(lease_until)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET
    term = CASE WHEN b.holder = EXCLUDED.holder THEN b.term ELSE b.term + 1 END,
    holder = EXCLUDED.holder,
    lease_until = EXCLUDED.lease_until,
    renewed_at = EXCLUDED.renewed_at
WHERE b.holder = EXCLUDED.holder OR b.holder IS NULL OR b.lease_until < EXCLUDED.renewed_at
RETURNING term
