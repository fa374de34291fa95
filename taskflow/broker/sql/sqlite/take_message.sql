-- recv: four statements inside one BEGIN IMMEDIATE transaction, so a message is either
-- unread or recorded in the receiving step, never both and never neither. A read message
-- is kept, marked, so that its send_key keeps refusing repeats.
-- 1. The oldest message of the topic, if the receiver runs and has not recorded this step.
SELECT seq, message FROM messages
WHERE destination_id = :workflow_id AND topic = :topic AND consumed_at IS NULL
  AND EXISTS (SELECT 1 FROM workflows WHERE id = :workflow_id AND status = 'PENDING')
  AND NOT EXISTS (SELECT 1 FROM steps WHERE workflow_id = :workflow_id AND step_id = :step_id)
ORDER BY seq
LIMIT 1;

-- 2. Mark it read.
UPDATE messages SET consumed_at = :now WHERE seq = :seq;

-- 3. Record it as the step.
INSERT INTO steps
    (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
VALUES (:workflow_id, :step_id, :step_name, :message, NULL, NULL, :started_at, :now);

-- 4. The receiver's status.
SELECT status FROM workflows WHERE id = :workflow_id
