-- Cancel every workflow of one queue still waiting (ENQUEUED, or DELAYED: a countdown, a
-- retry, a parked wait) and every unfinished descendant of theirs, in one statement, as
-- cancel.sql does. PENDING workflows of the queue run and are left alone: the status is
-- checked again on the newest row version, so one a worker claimed while this ran is not
-- cancelled as a root (a running descendant of a cancelled workflow is, as cancel does).
WITH RECURSIVE roots AS (
    SELECT id FROM {schema}.workflows
    WHERE queue = %(queue)s AND status IN ('ENQUEUED', 'DELAYED')
),
tree(id) AS (
    SELECT c.id FROM {schema}.workflows c JOIN roots r ON c.parent_id = r.id
    UNION
    SELECT c.id FROM {schema}.workflows c JOIN tree t ON c.parent_id = t.id
)
UPDATE {schema}.workflows
SET status = 'CANCELLED', output = NULL, error = NULL, finished_at = %(now)s,
    updated_at = %(now)s
WHERE (id IN (SELECT id FROM roots) AND status IN ('ENQUEUED', 'DELAYED'))
   OR (id IN (SELECT id FROM tree) AND status IN ('ENQUEUED', 'DELAYED', 'PENDING'))
RETURNING id
