-- Upsert a set of schedules, then delete the schedules of :replace_source the set does not
-- name (none when it is NULL): two statements, run inside one BEGIN IMMEDIATE transaction.
-- 1. Once per schedule: an existing one takes every definition column but keeps its pause,
--    creation and last fire, and keeps its next fire time unless its expression or time
--    zone changed (the caller computed the new one).
INSERT INTO schedules
    (name, workflow_name, expression, tz, context, inputs, backfill, queue, priority, options,
     source, paused, next_fire_at, last_fired_at, created_at, updated_at)
VALUES
    (:name, :workflow_name, :expression, :tz, :context, :inputs, :backfill, :queue, :priority,
     :options, :source, :paused, :next_fire_at, :last_fired_at, :created_at, :now)
ON CONFLICT (name) DO UPDATE SET
    workflow_name = excluded.workflow_name,
    expression = excluded.expression,
    tz = excluded.tz,
    context = excluded.context,
    inputs = excluded.inputs,
    backfill = excluded.backfill,
    queue = excluded.queue,
    priority = excluded.priority,
    options = excluded.options,
    source = excluded.source,
    next_fire_at = CASE
        WHEN schedules.expression = excluded.expression AND schedules.tz = excluded.tz
        THEN schedules.next_fire_at
        ELSE excluded.next_fire_at
    END,
    updated_at = excluded.updated_at;

-- 2. Once: the schedules of the source left out (:names is a JSON list).
DELETE FROM schedules
WHERE source = :replace_source AND name NOT IN (SELECT value FROM json_each(:names))
