-- Checkpoint one step outcome and read the workflow's status, in one round trip and one
-- commit. The first writer of a (workflow, step) wins; a later one inserts nothing and must
-- adopt the recorded outcome.
WITH ins AS (
    INSERT INTO {schema}.steps
        (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
    VALUES
        (%(workflow_id)s, %(step_id)s, %(name)s, %(output)s, %(error)s, %(child_workflow_id)s,
         %(started_at)s, %(finished_at)s)
    ON CONFLICT (workflow_id, step_id) DO NOTHING
    RETURNING 1
)
-- Always one row, even when the workflow row is gone (then status is NULL), so "inserted"
-- never reads as a duplicate write.
SELECT (SELECT count(*) FROM ins) AS inserted,
       (SELECT w.status FROM {schema}.workflows w WHERE w.id = %(workflow_id)s) AS status
