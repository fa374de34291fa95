-- Queue maintenance: three statements, run in order inside one BEGIN IMMEDIATE transaction.
-- Before them, in the same transaction, the broker runs cancel.sql with :deadline = :now:
-- running workflows past their durable timeout become CANCELLED with their unfinished
-- descendants, so none of those is promoted or counted below.
-- 1. Due DELAYED rows become ENQUEUED. An expired row is never promoted: 2 cancels it.
UPDATE workflows
SET status = 'ENQUEUED', updated_at = :now, wait_kind = NULL, wait_on = NULL, wait_key = NULL
WHERE status = 'DELAYED' AND delay_until <= :now
  AND (expires_at IS NULL OR expires_at > :now);

-- 1b. Parked waiters whose message, event or child result is there become ENQUEUED: the
-- fallback of the wakeups written by send, set_event and park (ix_workflows_waiting).
UPDATE workflows
SET status = 'ENQUEUED', updated_at = :now, delay_until = NULL, wait_kind = NULL,
    wait_on = NULL, wait_key = NULL
WHERE status = 'DELAYED' AND wait_on IS NOT NULL
  AND ((wait_kind = 'recv' AND EXISTS (
            SELECT 1 FROM messages m
            WHERE m.destination_id = workflows.id AND m.topic = workflows.wait_key
              AND m.consumed_at IS NULL))
       OR (wait_kind = 'event' AND EXISTS (
            SELECT 1 FROM events e
            WHERE e.workflow_id = workflows.wait_on AND e.key = workflows.wait_key))
       OR (wait_kind = 'child' AND EXISTS (
            SELECT 1 FROM workflows c
            WHERE c.id = workflows.wait_on
              AND c.status IN ('SUCCESS', 'ERROR', 'CANCELLED',
                               'MAX_RECOVERY_ATTEMPTS_EXCEEDED'))));

-- 2. Waiting rows past expires_at become CANCELLED.
UPDATE workflows
SET status = 'CANCELLED', finished_at = :now, updated_at = :now, error = NULL,
    executor_id = NULL
WHERE expires_at IS NOT NULL AND status IN ('ENQUEUED', 'DELAYED') AND expires_at <= :now;

-- 3. The earliest delay_until still DELAYED.
SELECT min(delay_until) FROM workflows WHERE status = 'DELAYED'
