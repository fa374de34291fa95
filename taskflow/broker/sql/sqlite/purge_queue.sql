-- Cancel every workflow of one queue still waiting (ENQUEUED, or DELAYED: a countdown, a
-- retry, a parked wait) and every unfinished descendant of theirs, in one statement, as
-- cancel.sql does. PENDING workflows of the queue run and are left alone.
WITH RECURSIVE roots AS (
    SELECT id FROM workflows WHERE queue = :queue AND status IN ('ENQUEUED', 'DELAYED')
),
tree(id) AS (
    SELECT c.id FROM workflows c JOIN roots r ON c.parent_id = r.id
    UNION
    SELECT c.id FROM workflows c JOIN tree t ON c.parent_id = t.id
)
UPDATE workflows
SET status = 'CANCELLED', output = NULL, error = NULL, finished_at = :now, updated_at = :now
WHERE (id IN (SELECT id FROM roots) AND status IN ('ENQUEUED', 'DELAYED'))
   OR (id IN (SELECT id FROM tree) AND status IN ('ENQUEUED', 'DELAYED', 'PENDING'))
RETURNING id
