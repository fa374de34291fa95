-- Cancel workflows and every descendant of theirs still ENQUEUED, DELAYED or PENDING, in one
-- statement. The roots are the ids in :ids and, when :deadline is set (the tick passes its
-- time), the PENDING (or parked) workflows whose durable timeout passed by then. The walk down parent_id
-- (ix_workflows_parent) also passes through finished children: one that returned may have
-- left children of its own running. Finished workflows keep their outcome; the executor id
-- is kept, as a record of who was running it. error is cleared: a workflow-level retry may
-- have left its last error there, and get() must raise WorkflowCancelledError, not that.
WITH RECURSIVE tree(id) AS (
    SELECT value FROM json_each(:ids)
    UNION
    SELECT id FROM workflows
    WHERE :deadline IS NOT NULL AND status IN ('PENDING', 'DELAYED')
      AND deadline_at IS NOT NULL
      AND deadline_at <= :deadline
    UNION
    SELECT c.id FROM workflows c JOIN tree t ON c.parent_id = t.id
)
UPDATE workflows
SET status = 'CANCELLED', output = NULL, error = NULL, finished_at = :now, updated_at = :now
WHERE id IN (SELECT id FROM tree) AND status IN ('ENQUEUED', 'DELAYED', 'PENDING')
RETURNING id
