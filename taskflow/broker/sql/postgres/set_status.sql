-- Move a workflow between statuses only if it is still in the one the caller saw.
UPDATE {schema}.workflows
SET status = %(status)s, error = COALESCE(%(error)s, error), updated_at = %(now)s,
    finished_at = %(finished_at)s
WHERE id = %(id)s AND status = %(expected)s
RETURNING id
