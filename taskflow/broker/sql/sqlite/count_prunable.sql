-- What prune.sql would delete over every batch, counted in one snapshot without deleting
-- anything (taskflow prune --dry-run). The conditions are prune.sql's.
WITH picked AS (
    SELECT w.id
    FROM workflows w
    WHERE w.finished_at < :before
      AND w.status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
      AND (w.parent_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM workflows p
          WHERE p.id = w.parent_id AND p.status IN ('ENQUEUED', 'DELAYED', 'PENDING')))
)
SELECT (SELECT count(*) FROM picked),
       (SELECT count(*) FROM steps WHERE workflow_id IN (SELECT id FROM picked)),
       (SELECT count(*) FROM events WHERE workflow_id IN (SELECT id FROM picked)),
       (SELECT count(*) FROM streams WHERE workflow_id IN (SELECT id FROM picked)),
       (SELECT count(*) FROM messages WHERE destination_id IN (SELECT id FROM picked)),
       (SELECT count(*) FROM debounces d
        WHERE NOT EXISTS (
            SELECT 1 FROM workflows w
            WHERE w.id = d.workflow_id AND w.status = 'DELAYED' AND w.started_at IS NULL)),
       (SELECT count(*) FROM queue_starts s
        LEFT JOIN queues q ON q.name = s.queue
        WHERE s.started_at < :before AND s.started_at <= :now - COALESCE(q.rate_per_ms, 0))
