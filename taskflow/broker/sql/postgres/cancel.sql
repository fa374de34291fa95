-- Cancel workflows and every descendant of theirs still ENQUEUED, DELAYED or PENDING, in one
-- statement (one round trip). The walk down parent_id (ix_workflows_parent) also passes
-- through finished children: one that returned may have left children of its own running.
-- Finished workflows keep their outcome; the executor id is kept, as a record of who was
-- running it. A running workflow notices at its next step checkpoint (record_step returns
-- the status). error is cleared: a workflow-level retry may have left its last error there,
-- and get() must raise WorkflowCancelledError, not that.
WITH RECURSIVE tree(id) AS (
    SELECT unnest(%(ids)s::text[])
    UNION
    SELECT c.id FROM {schema}.workflows c JOIN tree t ON c.parent_id = t.id
)
UPDATE {schema}.workflows
SET status = 'CANCELLED', output = NULL, error = NULL, finished_at = %(now)s,
    updated_at = %(now)s
WHERE id IN (SELECT id FROM tree) AND status IN ('ENQUEUED', 'DELAYED', 'PENDING')
RETURNING id
