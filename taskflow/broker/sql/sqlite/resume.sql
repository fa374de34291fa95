-- Resume finished workflows through a queue: three statements, run in order inside one
-- BEGIN IMMEDIATE transaction, all the given ids or none (see postgres/resume.sql for the
-- rules). 2 and 3 run only when 1 found every id CANCELLED, ERROR or
-- MAX_RECOVERY_ATTEMPTS_EXCEEDED.
-- 1. The workflows as found.
SELECT id, name, status FROM workflows WHERE id IN (SELECT value FROM json_each(:ids));

-- 2. Forget the last recorded step's error when it is what ended the workflow: for ERROR,
--    the workflow's error is that step's (the same type and message, or the WorkflowError
--    that stood for a type that could not be imported); for CANCELLED, a child workflow
--    cancelled with it.
DELETE FROM steps
WHERE error IS NOT NULL
  AND workflow_id IN (SELECT value FROM json_each(:ids))
  AND step_id = (SELECT max(l.step_id) FROM steps l WHERE l.workflow_id = steps.workflow_id)
  AND EXISTS (
      SELECT 1 FROM workflows w
      WHERE w.id = steps.workflow_id AND (
          (w.status = 'ERROR' AND (
              (json_extract(w.error, '$.type_name') = json_extract(steps.error, '$.type_name')
               AND json_extract(w.error, '$.message') = json_extract(steps.error, '$.message'))
              OR (json_extract(w.error, '$.type_name') = 'taskflow.errors.WorkflowError'
                  AND json_extract(w.error, '$.message')
                      = json_extract(steps.error, '$.type_name') || ': '
                        || json_extract(steps.error, '$.message'))))
          OR (w.status = 'CANCELLED'
              AND json_extract(steps.error, '$.type_name')
                  = 'taskflow.errors.WorkflowCancelledError')));

-- 3. Back to a queue, with no owner, no outcome, attempts, retries and deadline reset.
UPDATE workflows
SET status = CASE WHEN delay_until > :now THEN 'DELAYED' ELSE 'ENQUEUED' END,
    queue = COALESCE(:queue, queue, :default_queue),
    partition_key = CASE WHEN :queue IS NULL OR :queue = queue THEN partition_key END,
    executor_id = NULL, output = NULL, error = NULL, finished_at = NULL, attempts = 0,
    retries = 0, deadline_at = NULL, expires_at = NULL, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids))
  AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
RETURNING id
