-- Queue maintenance: three statements, run in order inside one BEGIN IMMEDIATE transaction.
-- Before them, in the same transaction, the broker runs cancel.sql with :deadline = :now:
-- running workflows past their durable timeout become CANCELLED with their unfinished
-- descendants, so none of those is promoted or counted below.
-- 1. Due DELAYED rows become ENQUEUED. An expired row is never promoted: 2 cancels it.
UPDATE workflows
SET status = 'ENQUEUED', updated_at = :now
WHERE status = 'DELAYED' AND delay_until <= :now
  AND (expires_at IS NULL OR expires_at > :now);

-- 2. Waiting rows past expires_at become CANCELLED.
UPDATE workflows
SET status = 'CANCELLED', finished_at = :now, updated_at = :now, error = NULL,
    executor_id = NULL
WHERE expires_at IS NOT NULL AND status IN ('ENQUEUED', 'DELAYED') AND expires_at <= :now;

-- 3. The earliest delay_until still DELAYED.
SELECT min(delay_until) FROM workflows WHERE status = 'DELAYED'
