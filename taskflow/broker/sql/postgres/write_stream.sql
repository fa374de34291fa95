-- Append to a workflow's stream in one statement: the value (NULL: the row that closes the
-- stream) at the next offset, the writing step in the same commit, and a notification to
-- readers in other processes. Nothing is appended to a closed stream, nor by a step that an
-- earlier execution recorded already (the append is made only when the step row is). Two
-- concurrent appends may pick the same offset: the later one fails on the primary key and
-- the broker runs the statement again.
WITH wf AS (
    SELECT status FROM {schema}.workflows WHERE id = %(workflow_id)s
),
last AS (
    -- The close row is always the last one, so the last row says whether it is closed.
    SELECT "offset", value IS NULL AS closed
    FROM {schema}.streams
    WHERE workflow_id = %(workflow_id)s AND key = %(key)s
    ORDER BY "offset" DESC
    LIMIT 1
),
plan AS (
    SELECT COALESCE((SELECT "offset" FROM last), -1) + 1 AS next_offset,
           COALESCE((SELECT closed FROM last), false) AS closed,
           EXISTS (SELECT 1 FROM wf) AS found
),
step AS (
    INSERT INTO {schema}.steps
        (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
    SELECT %(workflow_id)s, %(step_id)s, %(step_name)s,
           CASE WHEN plan.closed THEN 'null' ELSE plan.next_offset::text END,
           NULL, NULL, %(now)s, %(now)s
    FROM plan
    WHERE %(step_id)s::integer IS NOT NULL AND plan.found
      AND NOT (plan.closed AND %(value)s::text IS NOT NULL)
    ON CONFLICT (workflow_id, step_id) DO NOTHING
    RETURNING 1
),
ins AS (
    INSERT INTO {schema}.streams (workflow_id, key, "offset", value, written_at)
    SELECT %(workflow_id)s, %(key)s, plan.next_offset, %(value)s::text, %(now)s
    FROM plan
    WHERE plan.found AND NOT plan.closed
      AND (%(step_id)s::integer IS NULL OR EXISTS (SELECT 1 FROM step))
    RETURNING workflow_id, "offset"
)
SELECT (SELECT "offset" FROM ins),
       (SELECT closed FROM plan),
       (SELECT count(*) FROM step),
       (SELECT status FROM wf),
       (SELECT count(pg_notify(%(wake_channel)s, 's:' || workflow_id)) FROM ins)
