-- Upsert a set of schedules and, when %(replace_source)s is not NULL, delete the schedules
-- of that source the set does not name: one statement, so one transaction. An existing
-- schedule takes every definition column but keeps its pause, creation and last fire, and
-- keeps its next fire time unless its expression or time zone changed (the caller computed
-- the new one). Rows are written in name order, so concurrent calls lock in one order. The
-- upsert and the delete touch disjoint rows (named / not named).
WITH input AS (
    SELECT *
    FROM unnest(
        %(names)s::text[], %(workflow_names)s::text[], %(expressions)s::text[],
        %(tzs)s::text[], %(contexts)s::text[], %(inputs)s::text[], %(backfills)s::boolean[],
        %(queues)s::text[], %(priorities)s::integer[], %(options)s::text[],
        %(sources)s::text[], %(pauseds)s::boolean[], %(next_fire_ats)s::bigint[],
        %(last_fired_ats)s::bigint[], %(created_ats)s::bigint[]
    ) AS t(name, workflow_name, expression, tz, context, inputs, backfill, queue, priority,
           options, source, paused, next_fire_at, last_fired_at, created_at)
),
up AS (
    INSERT INTO {schema}.schedules AS s
        (name, workflow_name, expression, tz, context, inputs, backfill, queue, priority,
         options, source, paused, next_fire_at, last_fired_at, created_at, updated_at)
    SELECT name, workflow_name, expression, tz, context, inputs, backfill, queue, priority,
           options, source, paused, next_fire_at, last_fired_at, created_at, %(now)s
    FROM input
    ORDER BY name
    ON CONFLICT (name) DO UPDATE SET
        workflow_name = EXCLUDED.workflow_name,
        expression = EXCLUDED.expression,
        tz = EXCLUDED.tz,
        context = EXCLUDED.context,
        inputs = EXCLUDED.inputs,
        backfill = EXCLUDED.backfill,
        queue = EXCLUDED.queue,
        priority = EXCLUDED.priority,
        options = EXCLUDED.options,
        source = EXCLUDED.source,
        next_fire_at = CASE
            WHEN s.expression = EXCLUDED.expression AND s.tz = EXCLUDED.tz THEN s.next_fire_at
            ELSE EXCLUDED.next_fire_at
        END,
        updated_at = EXCLUDED.updated_at
    RETURNING name
),
gone AS (
    DELETE FROM {schema}.schedules
    WHERE source = %(replace_source)s::text AND name <> ALL (%(names)s::text[])
    RETURNING name
)
SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM gone)
