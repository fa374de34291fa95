-- Why entries of an enqueue wrote nothing: their id exists, or another waiting or running
-- workflow of the queue holds their dedup key. Only run when some entry was not created.
SELECT t.ord,
       EXISTS (SELECT 1 FROM {schema}.workflows w WHERE w.id = t.id),
       (SELECT w.id FROM {schema}.workflows w
        WHERE w.queue = t.queue AND w.dedup_id = t.dedup_id
          AND w.status IN ('ENQUEUED', 'DELAYED', 'PENDING')
        LIMIT 1)
FROM unnest(%(ids)s::text[], %(queues)s::text[], %(dedup_ids)s::text[])
    WITH ORDINALITY AS t(id, queue, dedup_id, ord)
