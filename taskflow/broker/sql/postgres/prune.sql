-- One retention batch, in one statement (one short transaction): up to %(batch)s finished
-- workflows that finished before %(before)s, oldest first, with every row that belongs to
-- them; and, in the batch that finds fewer (the last of a pass), up to %(batch)s stale rows
-- of two side tables, which are scanned whole: once per pass, not once per batch.
--
-- Rows are picked FOR UPDATE SKIP LOCKED, walking ix_workflows_finished in finished_at
-- order: a row another transaction holds (a resume, a send to it) is skipped, never waited
-- for, so a worker is never blocked behind retention; the row goes in a later batch. A
-- finished child is kept while its parent is unfinished, since the parent may still read
-- its result. Nothing joins on a child's parent_id in a way a missing parent breaks (a
-- child outlives its pruned parent: parent_id is plain text, not a foreign key).
-- Lists are bound as ANY(ARRAY(...)) so each delete probes its primary key per id
-- instead of planning a join.
WITH picked AS (
    SELECT w.id
    FROM {schema}.workflows w
    WHERE w.finished_at < %(before)s
      AND w.status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
      AND (w.parent_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM {schema}.workflows p
          WHERE p.id = w.parent_id AND p.status IN ('ENQUEUED', 'DELAYED', 'PENDING')))
    ORDER BY w.finished_at
    LIMIT %(batch)s
    FOR UPDATE OF w SKIP LOCKED
),
gone AS (
    DELETE FROM {schema}.workflows w
    WHERE w.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING w.id
),
steps_gone AS (
    DELETE FROM {schema}.steps WHERE workflow_id = ANY(ARRAY(SELECT id FROM gone))
    RETURNING 1
),
events_gone AS (
    DELETE FROM {schema}.events WHERE workflow_id = ANY(ARRAY(SELECT id FROM gone))
    RETURNING 1
),
streams_gone AS (
    DELETE FROM {schema}.streams WHERE workflow_id = ANY(ARRAY(SELECT id FROM gone))
    RETURNING 1
),
-- Read and unread alike: a read message stays only so that its send_key refuses a repeat
-- while its destination exists.
messages_gone AS (
    DELETE FROM {schema}.messages WHERE destination_id IN (SELECT id FROM gone)
    RETURNING 1
),
-- A key's row matters only while its workflow waits to start (DELAYED, never started);
-- otherwise the next debounce of the key starts a new cycle whether or not the row exists.
-- A row a debounce holds locked right now is skipped.
stale_debounces AS (
    SELECT d.workflow_name, d.debounce_key
    FROM {schema}.debounces d
    WHERE (SELECT count(*) FROM picked) < %(batch)s
      AND NOT EXISTS (
        SELECT 1 FROM {schema}.workflows w
        WHERE w.id = d.workflow_id AND w.status = 'DELAYED' AND w.started_at IS NULL)
    LIMIT %(batch)s
    FOR UPDATE OF d SKIP LOCKED
),
debounces_gone AS (
    DELETE FROM {schema}.debounces d
    USING stale_debounces s
    WHERE d.workflow_name = s.workflow_name AND d.debounce_key = s.debounce_key
    RETURNING 1
),
-- Claims prune the start log of the queues they serve; this catches the queues nobody
-- claims any more. A start is kept while the queue's recorded rate window may count it.
old_starts AS (
    SELECT s.ctid AS row_id
    FROM {schema}.queue_starts s
    LEFT JOIN {schema}.queues q ON q.name = s.queue
    WHERE (SELECT count(*) FROM picked) < %(batch)s
      AND s.started_at < %(before)s
      AND s.started_at <= %(now)s::bigint - COALESCE(q.rate_per_ms, 0)
    LIMIT %(batch)s
    FOR UPDATE OF s SKIP LOCKED
),
starts_gone AS (
    DELETE FROM {schema}.queue_starts
    WHERE ctid = ANY(ARRAY(SELECT row_id FROM old_starts))
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone),
       (SELECT count(*) FROM steps_gone),
       (SELECT count(*) FROM events_gone),
       (SELECT count(*) FROM streams_gone),
       (SELECT count(*) FROM messages_gone),
       (SELECT count(*) FROM debounces_gone),
       (SELECT count(*) FROM starts_gone)
