-- Unpaused schedules whose next fire time has come, soonest first (ix_schedules_due).
SELECT name, workflow_name, expression, tz, context, inputs, backfill, queue, priority, options,
       source, paused, next_fire_at, last_fired_at, created_at, updated_at
FROM schedules
WHERE NOT paused AND next_fire_at <= :now
ORDER BY next_fire_at, name
LIMIT :limit
