-- Move a workflow between statuses only if it is still in the one the caller saw.
UPDATE workflows
SET status = :status, error = COALESCE(:error, error), updated_at = :now,
    finished_at = :finished_at
WHERE id = :id AND status = :expected
RETURNING id
