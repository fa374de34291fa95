-- Unpause a schedule; a row returns if it exists. A paused schedule takes
-- %(next_fire_at)s when given (the next time after now: the pause is not backfilled); a
-- schedule that was not paused keeps its next fire time, which may be due and unfired.
UPDATE {schema}.schedules
SET next_fire_at = CASE
        WHEN paused AND %(next_fire_at)s::bigint IS NOT NULL THEN %(next_fire_at)s::bigint
        ELSE next_fire_at
    END,
    paused = false,
    updated_at = %(now)s
WHERE name = %(name)s
RETURNING name
