-- Give running workflows of one executor back to their queue (guarded by owner and status).
-- Without count_attempt the attempt the next claim adds is undone here.
UPDATE workflows
SET status = 'ENQUEUED', executor_id = NULL, queue = COALESCE(queue, :default_queue),
    attempts = CASE WHEN :count_attempt THEN attempts ELSE MAX(attempts - 1, 0) END,
    updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids))
  AND status = 'PENDING' AND executor_id = :executor_id
RETURNING id
