-- Two statements, run in one transaction:
-- 1. Record the app version, first seen now.
INSERT INTO app_versions (version, version_at, created_at)
VALUES (:app_version, :now, :now)
ON CONFLICT (version) DO NOTHING;

-- 2. Each declaration (executemany) replaces the stored one unless that comes from a newer
--    version (one seen later): the newest version's limits win.
INSERT INTO queues AS q
    (name, updated_at, concurrency, worker_concurrency, rate_count, rate_per_ms, partitioned,
     app_version, declared_at)
VALUES (:name, :now, :concurrency, :worker_concurrency, :rate_count, :rate_per_ms,
        :partitioned, :app_version, :now)
ON CONFLICT (name) DO UPDATE
SET updated_at = excluded.updated_at, concurrency = excluded.concurrency,
    worker_concurrency = excluded.worker_concurrency, rate_count = excluded.rate_count,
    rate_per_ms = excluded.rate_per_ms, partitioned = excluded.partitioned,
    app_version = excluded.app_version, declared_at = excluded.declared_at
WHERE q.app_version IS NULL
   OR q.app_version = excluded.app_version
   OR COALESCE((SELECT v.version_at FROM app_versions v WHERE v.version = q.app_version), 0)
      <= (SELECT v.version_at FROM app_versions v WHERE v.version = excluded.app_version)
