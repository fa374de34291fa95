-- Unpause a schedule; a row returns if it exists. A paused schedule takes :next_fire_at
-- when given (the next time after now: the pause is not backfilled); a schedule that was
-- not paused keeps its next fire time, which may be due and unfired.
UPDATE schedules
SET next_fire_at = CASE
        WHEN paused AND :next_fire_at IS NOT NULL THEN :next_fire_at
        ELSE next_fire_at
    END,
    paused = 0,
    updated_at = :now
WHERE name = :name
RETURNING name
