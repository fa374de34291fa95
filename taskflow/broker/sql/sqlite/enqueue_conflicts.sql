-- Why an entry of an enqueue wrote nothing: its id exists, or another waiting or running
-- workflow of the queue holds its dedup key.
SELECT EXISTS (SELECT 1 FROM workflows w WHERE w.id = :id),
       (SELECT w.id FROM workflows w
        WHERE w.queue = :queue AND w.dedup_id = :dedup_id
          AND w.status IN ('ENQUEUED', 'DELAYED', 'PENDING')
        LIMIT 1)
