-- Move a schedule's next fire time, guarded by the time the caller fired (another beat, a
-- change of the schedule or a pause make it differ) and, when %(holder)s is given, by the
-- caller still holding the beat lease of %(term)s at %(now)s. A row returns if it moved;
-- the caller then enqueues the fire's workflows in the same transaction.
--
-- Concurrent fires of one schedule wait on its row lock; under READ COMMITTED the second
-- re-checks next_fire_at on the committed row and matches nothing. The lease row is read
-- FOR SHARE, which conflicts with the lock a takeover's upsert takes: a fire and a change
-- of leader are serialised, and a fire that waited re-checks holder and term on the new row.
UPDATE {schema}.schedules
SET next_fire_at = %(new_next)s,
    last_fired_at = COALESCE(%(last_fired)s::bigint, last_fired_at),
    updated_at = %(now)s
WHERE name = %(name)s
  AND next_fire_at = %(expected_next)s
  AND NOT paused
  AND (
    %(holder)s::text IS NULL
    OR EXISTS (
        SELECT 1 FROM {schema}.beat_leader
        WHERE name = 'beat' AND holder = %(holder)s::text AND term = %(term)s
          AND lease_until >= %(now)s
        FOR SHARE
    )
  )
RETURNING name
