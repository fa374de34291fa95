-- Insert a schedule unless its name exists (then nothing is written and no row returns).
INSERT INTO {schema}.schedules
    (name, workflow_name, expression, tz, context, inputs, backfill, queue, priority, options,
     source, paused, next_fire_at, last_fired_at, created_at, updated_at)
VALUES
    (%(name)s, %(workflow_name)s, %(expression)s, %(tz)s, %(context)s, %(inputs)s,
     %(backfill)s, %(queue)s, %(priority)s, %(options)s, %(source)s, %(paused)s,
     %(next_fire_at)s, %(last_fired_at)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (name) DO NOTHING
RETURNING name
