-- One retention batch: statements run in order inside one BEGIN IMMEDIATE transaction
-- (one writer at a time: nothing picked in 1. changes before the deletes).
-- 1. Up to :batch finished workflows that finished before :before, oldest first (walking
--    ix_workflows_finished). A finished child is kept while its parent is unfinished,
--    since the parent may still read its result. Nothing joins on a child's parent_id in a
--    way a missing parent breaks: a child outlives its pruned parent.
SELECT w.id
FROM workflows w
WHERE w.finished_at < :before
  AND w.status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
  AND (w.parent_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM workflows p
      WHERE p.id = w.parent_id AND p.status IN ('ENQUEUED', 'DELAYED', 'PENDING')))
ORDER BY w.finished_at
LIMIT :batch;

-- 2. Those workflows (:ids is the JSON list 1. returned) and every row that belongs to
--    them. Read and unread messages alike: a read message stays only so that its send_key
--    refuses a repeat while its destination exists.
DELETE FROM workflows WHERE id IN (SELECT value FROM json_each(:ids));

DELETE FROM steps WHERE workflow_id IN (SELECT value FROM json_each(:ids));

DELETE FROM events WHERE workflow_id IN (SELECT value FROM json_each(:ids));

DELETE FROM streams WHERE workflow_id IN (SELECT value FROM json_each(:ids));

DELETE FROM messages WHERE destination_id IN (SELECT value FROM json_each(:ids));

-- 3. Only in the batch where 1. found fewer than :batch (the last of a pass), since they
--    scan their tables whole: a debounce key's row matters only while its workflow waits
--    to start (DELAYED, never started); otherwise the next debounce of the key starts a new
--    cycle anyway.
DELETE FROM debounces
WHERE rowid IN (
    SELECT d.rowid FROM debounces d
    WHERE NOT EXISTS (
        SELECT 1 FROM workflows w
        WHERE w.id = d.workflow_id AND w.status = 'DELAYED' AND w.started_at IS NULL)
    LIMIT :batch);

-- 4. Claims prune the start log of the queues they serve; this catches the queues nobody
--    claims any more. A start is kept while the queue's recorded rate window may count it.
DELETE FROM queue_starts
WHERE rowid IN (
    SELECT s.rowid FROM queue_starts s
    LEFT JOIN queues q ON q.name = s.queue
    WHERE s.started_at < :before AND s.started_at <= :now - COALESCE(q.rate_per_ms, 0)
    LIMIT :batch)
