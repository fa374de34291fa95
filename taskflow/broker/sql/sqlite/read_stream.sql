-- One batch of a workflow's stream after offset :after, in order, with the workflow's
-- status on every row, from one read snapshot: a finished status with a short batch means
-- nothing more was written. No row at all: no such workflow; one row with a NULL offset:
-- no value after :after yet.
SELECT w.status, s."offset", s.value
FROM workflows w
LEFT JOIN (
    SELECT "offset", value
    FROM streams
    WHERE workflow_id = :workflow_id AND key = :key AND "offset" > :after
    ORDER BY "offset"
    LIMIT :limit
) s ON 1 = 1
WHERE w.id = :workflow_id
ORDER BY s."offset"
