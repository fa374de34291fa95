-- Pause a schedule (the beat skips it); a row returns if it exists.
UPDATE {schema}.schedules
SET paused = true, updated_at = %(now)s
WHERE name = %(name)s
RETURNING name
