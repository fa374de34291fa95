-- Record queue names as known (idempotent; names are unique in the batch).
INSERT INTO {schema}.queues (name, updated_at)
SELECT name, %(now)s FROM unnest(%(names)s::text[]) AS t(name)
ON CONFLICT (name) DO UPDATE SET updated_at = EXCLUDED.updated_at
