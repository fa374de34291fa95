-- Record the final outcome; guarded so a slow duplicate never overwrites a newer truth.
UPDATE workflows
SET status = :status, output = :output, error = :error, finished_at = :now, updated_at = :now
WHERE id = :id AND status = 'PENDING'
RETURNING id
