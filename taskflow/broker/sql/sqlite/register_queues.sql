-- Record queue names as known (idempotent).
INSERT INTO queues (name, updated_at)
SELECT value, :now FROM json_each(:names) WHERE true
ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at
