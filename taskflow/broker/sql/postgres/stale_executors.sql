-- Owners of running workflows without a fresh heartbeat (served by the partial index on
-- PENDING executor_id); has_row is false when the executor never beat or its row is gone.
SELECT DISTINCT w.executor_id, e.executor_id IS NOT NULL
FROM {schema}.workflows w
LEFT JOIN {schema}.executors e ON e.executor_id = w.executor_id
WHERE w.status = 'PENDING' AND w.executor_id IS NOT NULL
  AND (e.heartbeat_at IS NULL OR e.heartbeat_at < %(cutoff)s)
ORDER BY w.executor_id
