-- Park a running workflow that waits (see the Postgres file for the rules): it gives back
-- its slots until delay_until or until what it waits for arrives, or goes straight back to
-- its queue when that is already there.
UPDATE workflows
SET status = CASE WHEN ready THEN 'ENQUEUED' ELSE 'DELAYED' END,
    delay_until = CASE WHEN ready THEN NULL ELSE :until END,
    wait_kind = CASE WHEN ready THEN NULL ELSE :kind END,
    wait_on = CASE WHEN ready THEN NULL ELSE :wait_on END,
    wait_key = CASE WHEN ready THEN NULL ELSE :wait_key END,
    executor_id = NULL, attempts = max(attempts - 1, 0),
    queue = COALESCE(queue, :default_queue), updated_at = :now
FROM (
    SELECT (:kind = 'recv' AND EXISTS (
                SELECT 1 FROM messages m
                WHERE m.destination_id = :id AND m.topic = :wait_key
                  AND m.consumed_at IS NULL))
        OR (:kind = 'event' AND EXISTS (
                SELECT 1 FROM events e WHERE e.workflow_id = :wait_on AND e.key = :wait_key))
        OR (:kind = 'child' AND EXISTS (
                SELECT 1 FROM workflows c
                WHERE c.id = :wait_on
                  AND c.status IN ('SUCCESS', 'ERROR', 'CANCELLED',
                                   'MAX_RECOVERY_ATTEMPTS_EXCEEDED'))) AS ready
)
WHERE id = :id AND status = 'PENDING' AND executor_id = :executor_id
RETURNING status, NULL
