-- Insert a schedule unless its name exists (then nothing is written and no row returns).
INSERT INTO schedules
    (name, workflow_name, expression, tz, context, inputs, backfill, queue, priority, options,
     source, paused, next_fire_at, last_fired_at, created_at, updated_at)
VALUES
    (:name, :workflow_name, :expression, :tz, :context, :inputs, :backfill, :queue, :priority,
     :options, :source, :paused, :next_fire_at, :last_fired_at, :created_at, :updated_at)
ON CONFLICT (name) DO NOTHING
RETURNING name
