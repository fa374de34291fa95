-- Resume finished workflows through a queue, in one statement: all the given ids, or none.
-- Nothing changes unless every id (the caller passes them without duplicates) exists and is
-- CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED; the rows are returned as found either
-- way, so the caller can name the others.
-- Each becomes ENQUEUED (waking workers) on :queue, else its own queue, else :default_queue
-- (run directly, it had none); DELAYED instead while a delay it was given has not passed.
-- No owner, no outcome; recovery attempts and retries start over; deadline_at is cleared so
-- a timeout starts over at the next claim. started_at is kept: the claim then loads the
-- recorded steps, which replay. Moving to another queue drops the partition key, which
-- belonged to the old queue.
-- The last recorded step's error is forgotten, so that step runs again, when it is what
-- ended the workflow: for ERROR, the workflow's error is that step's (the same type and
-- message, or the WorkflowError that stood for a type that could not be imported); for
-- CANCELLED, a child workflow cancelled with it. Nothing is recorded after the last step,
-- so running it again cannot contradict the history.
WITH given AS (
    SELECT id, name, status, error
    FROM {schema}.workflows
    WHERE id = ANY(%(ids)s::text[])
    FOR UPDATE
),
allowed AS (
    SELECT count(*) = cardinality(%(ids)s::text[]) AS ok
    FROM given
    WHERE status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
),
last_failed AS (
    SELECT g.id, l.step_id
    FROM given g
    CROSS JOIN LATERAL (
        SELECT s.step_id, s.error::json AS e
        FROM {schema}.steps s
        WHERE s.workflow_id = g.id
        ORDER BY s.step_id DESC
        LIMIT 1
    ) l
    WHERE l.e IS NOT NULL AND (
        (g.status = 'ERROR' AND (
            (g.error::json ->> 'type_name' = l.e ->> 'type_name'
             AND g.error::json ->> 'message' = l.e ->> 'message')
            OR (g.error::json ->> 'type_name' = 'taskflow.errors.WorkflowError'
                AND g.error::json ->> 'message'
                    = (l.e ->> 'type_name') || ': ' || (l.e ->> 'message'))))
        OR (g.status = 'CANCELLED'
            AND l.e ->> 'type_name' = 'taskflow.errors.WorkflowCancelledError')
    )
),
forgotten AS (
    DELETE FROM {schema}.steps s
    USING last_failed f
    WHERE (SELECT ok FROM allowed) AND s.workflow_id = f.id AND s.step_id = f.step_id
      AND s.error IS NOT NULL
    RETURNING s.workflow_id
),
resumed AS (
    UPDATE {schema}.workflows w
    SET status = CASE WHEN w.delay_until > %(now)s THEN 'DELAYED' ELSE 'ENQUEUED' END,
        queue = COALESCE(%(queue)s, w.queue, %(default_queue)s),
        partition_key = CASE WHEN %(queue)s::text IS NULL OR %(queue)s = w.queue
                             THEN w.partition_key END,
        executor_id = NULL, output = NULL, error = NULL, finished_at = NULL, attempts = 0,
        retries = 0, deadline_at = NULL, expires_at = NULL, updated_at = %(now)s
    WHERE w.id IN (SELECT id FROM given) AND (SELECT ok FROM allowed)
      AND w.status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
    RETURNING w.id, w.queue, w.status
)
SELECT g.id, g.name, g.status, r.id IS NOT NULL,
       CASE WHEN r.status = 'ENQUEUED' THEN pg_notify(%(channel)s, r.queue) END
FROM given g LEFT JOIN resumed r ON r.id = g.id
