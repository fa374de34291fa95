-- Write a batch of ENQUEUED / DELAYED workflows in one statement (one round trip, one
-- commit). An existing id or a held dedup key writes nothing for that entry (ON CONFLICT
-- without a target covers the primary key and the partial unique dedup index); the first of
-- duplicates within the batch wins, since rows are inserted in batch order (which also gives
-- them increasing seq values: FIFO within one millisecond). Workers are woken once per queue:
-- Postgres delivers identical notifications of one transaction once, at commit.
WITH ins AS (
    INSERT INTO {schema}.workflows
        (id, name, status, queue, priority, inputs, app_version, user_name, parent_id,
         partition_key, dedup_id, attempts, created_at, updated_at, timeout_ms, delay_until,
         expires_at)
    SELECT t.id, t.name, t.status, t.queue, t.priority, t.inputs, t.app_version, t.user_name,
           t.parent_id, t.partition_key, t.dedup_id, 0, t.created_at, %(now)s, t.timeout_ms,
           t.delay_until, t.expires_at
    FROM unnest(
        %(ids)s::text[], %(names)s::text[], %(statuses)s::text[], %(queues)s::text[],
        %(priorities)s::integer[], %(inputs)s::text[], %(app_versions)s::text[],
        %(users)s::text[], %(parent_ids)s::text[], %(partition_keys)s::text[],
        %(dedup_ids)s::text[], %(created_ats)s::bigint[], %(timeouts)s::bigint[],
        %(delay_untils)s::bigint[], %(expires_ats)s::bigint[]
    ) WITH ORDINALITY AS t(id, name, status, queue, priority, inputs, app_version, user_name,
                           parent_id, partition_key, dedup_id, created_at, timeout_ms,
                           delay_until, expires_at, ord)
    ORDER BY t.ord
    ON CONFLICT DO NOTHING
    RETURNING id, queue, dedup_id, status
)
SELECT id, dedup_id,
       CASE WHEN status = 'ENQUEUED' THEN pg_notify(%(channel)s, queue) END
FROM ins
