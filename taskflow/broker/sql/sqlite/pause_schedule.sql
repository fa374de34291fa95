-- Pause a schedule (the beat skips it); a row returns if it exists.
UPDATE schedules
SET paused = 1, updated_at = :now
WHERE name = :name
RETURNING name
