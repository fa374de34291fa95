-- One schedule (columns in the order schedule_store.schedule_row reads them).
SELECT name, workflow_name, expression, tz, context, inputs, backfill, queue, priority, options,
       source, paused, next_fire_at, last_fired_at, created_at, updated_at
FROM schedules
WHERE name = :name
