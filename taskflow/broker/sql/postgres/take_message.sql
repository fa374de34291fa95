-- recv: consume the oldest unread message of a topic and record it as the receiving step,
-- in one statement (one commit): a message is either unread or recorded in the step, never
-- both and never neither, which is what makes delivery exactly once across crashes. Only a
-- running receiver consumes, and never twice into one step. A read message is kept, marked,
-- so that its send_key keeps refusing repeats.
WITH m AS (
    SELECT seq FROM {schema}.messages
    WHERE destination_id = %(workflow_id)s AND topic = %(topic)s AND consumed_at IS NULL
      AND EXISTS (SELECT 1 FROM {schema}.workflows
                  WHERE id = %(workflow_id)s AND status = 'PENDING')
      AND NOT EXISTS (SELECT 1 FROM {schema}.steps
                      WHERE workflow_id = %(workflow_id)s AND step_id = %(step_id)s)
    ORDER BY seq
    LIMIT 1
    FOR UPDATE SKIP LOCKED
),
gone AS (
    UPDATE {schema}.messages SET consumed_at = %(now)s
    WHERE seq IN (SELECT seq FROM m)
    RETURNING message
),
rec AS (
    INSERT INTO {schema}.steps
        (workflow_id, step_id, name, output, error, child_workflow_id, started_at, finished_at)
    SELECT %(workflow_id)s, %(step_id)s, %(step_name)s, message, NULL, NULL, %(started_at)s,
           %(now)s
    FROM gone
    RETURNING output
)
SELECT (SELECT output FROM rec),
       (SELECT status FROM {schema}.workflows WHERE id = %(workflow_id)s)
