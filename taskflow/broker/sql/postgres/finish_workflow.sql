-- Record the final outcome; guarded so a slow duplicate never overwrites a newer truth.
UPDATE {schema}.workflows
SET status = %(status)s, output = %(output)s, error = %(error)s,
    finished_at = %(now)s, updated_at = %(now)s
WHERE id = %(id)s AND status = 'PENDING'
RETURNING id
