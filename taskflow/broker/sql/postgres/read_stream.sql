-- One batch of a workflow's stream after a given offset, in order, with the workflow's
-- status on every row, all from one snapshot: a finished status with a short batch means
-- nothing more was written. No row at all: no such workflow; one row with a NULL offset:
-- no value after that offset yet. The inner ORDER BY ... LIMIT walks the primary key.
SELECT w.status, s."offset", s.value
FROM {schema}.workflows w
LEFT JOIN (
    SELECT "offset", value
    FROM {schema}.streams
    WHERE workflow_id = %(workflow_id)s AND key = %(key)s AND "offset" > %(after)s
    ORDER BY "offset"
    LIMIT %(limit)s
) s ON true
WHERE w.id = %(workflow_id)s
ORDER BY s."offset"
