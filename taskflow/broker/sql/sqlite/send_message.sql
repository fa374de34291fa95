-- Deliver one message: five statements, run in order inside one BEGIN IMMEDIATE transaction.
-- 1. Does the destination exist?
SELECT count(*) FROM workflows WHERE id = :destination_id;

-- 2. The message (a send replayed by a workflow carries the same send_key: nothing new).
INSERT INTO messages (destination_id, topic, message, send_key, created_at)
VALUES (:destination_id, :topic, :message, :send_key, :now)
ON CONFLICT (send_key) WHERE send_key IS NOT NULL DO NOTHING;

-- 3. The sending workflow's step, when a workflow sends.
INSERT INTO steps
    (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
SELECT :sender_id, :step_id, :step_name, 'null', NULL, NULL, :now, :now
WHERE :sender_id IS NOT NULL
ON CONFLICT (workflow_id, step_id) DO NOTHING;

-- 4. Wake the destination if it is parked waiting for this topic.
UPDATE workflows
SET status = 'ENQUEUED', delay_until = NULL, wait_kind = NULL, wait_on = NULL,
    wait_key = NULL, updated_at = :now
WHERE id = :destination_id AND status = 'DELAYED' AND wait_kind = 'recv'
  AND wait_key = :topic;

-- 5. The sender's status (a cancelled sender stops).
SELECT status FROM workflows WHERE id = :sender_id
