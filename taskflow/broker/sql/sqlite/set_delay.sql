-- Two statements, run in order inside one BEGIN IMMEDIATE transaction.
-- 1. The workflow as found, so the caller can say why nothing moved.
SELECT id, name, status FROM workflows WHERE id = :id;

-- 2. Move the delay of a DELAYED workflow: it stays DELAYED until :delay_until, or becomes
--    ENQUEUED at once when that is not after :now.
UPDATE workflows
SET delay_until = :delay_until,
    status = CASE WHEN :delay_until > :now THEN 'DELAYED' ELSE 'ENQUEUED' END,
    updated_at = :now
WHERE id = :id AND status = 'DELAYED'
RETURNING id
