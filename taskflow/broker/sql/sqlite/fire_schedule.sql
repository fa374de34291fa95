-- Move a schedule's next fire time, guarded by the time the caller fired (another beat, a
-- change of the schedule or a pause make it differ) and, when :holder is given, by the
-- caller still holding the beat lease of :term at :now. A row returns if it moved; the
-- caller then enqueues the fire's workflows in the same BEGIN IMMEDIATE transaction, which
-- also keeps a change of leader from landing in between.
UPDATE schedules
SET next_fire_at = :new_next,
    last_fired_at = COALESCE(:last_fired, last_fired_at),
    updated_at = :now
WHERE name = :name
  AND next_fire_at = :expected_next
  AND NOT paused
  AND (
    :holder IS NULL
    OR EXISTS (
        SELECT 1 FROM beat_leader
        WHERE name = 'beat' AND holder = :holder AND term = :term AND lease_until >= :now
    )
  )
RETURNING name
