-- Record an app version (first seen now) and its queue declarations. A declaration replaces
-- the stored one unless that comes from a newer version (one seen later): the newest
-- version's limits win. The version row inserted here is not visible to this statement's
-- subqueries (one snapshot), hence the COALESCE to now for a version seen for the first time.
WITH version AS (
    INSERT INTO {schema}.app_versions (version, version_at, created_at)
    VALUES (%(app_version)s, %(now)s, %(now)s)
    ON CONFLICT (version) DO NOTHING
)
INSERT INTO {schema}.queues AS q
    (name, updated_at, concurrency, worker_concurrency, rate_count, rate_per_ms, partitioned,
     app_version, declared_at)
SELECT d.name, %(now)s, d.concurrency, d.worker_concurrency, d.rate_count, d.rate_per_ms,
       d.partitioned, %(app_version)s, %(now)s
FROM unnest(%(names)s::text[], %(concurrencies)s::int[], %(worker_concurrencies)s::int[],
            %(rate_counts)s::int[], %(rate_pers)s::bigint[], %(partitioneds)s::int[])
     AS d(name, concurrency, worker_concurrency, rate_count, rate_per_ms, partitioned)
ON CONFLICT (name) DO UPDATE
SET updated_at = EXCLUDED.updated_at, concurrency = EXCLUDED.concurrency,
    worker_concurrency = EXCLUDED.worker_concurrency, rate_count = EXCLUDED.rate_count,
    rate_per_ms = EXCLUDED.rate_per_ms, partitioned = EXCLUDED.partitioned,
    app_version = EXCLUDED.app_version, declared_at = EXCLUDED.declared_at
WHERE q.app_version IS NULL
   OR q.app_version = EXCLUDED.app_version
   OR COALESCE((SELECT v.version_at FROM {schema}.app_versions v
                WHERE v.version = q.app_version), 0)
      <= COALESCE((SELECT v.version_at FROM {schema}.app_versions v
                   WHERE v.version = EXCLUDED.app_version), %(now)s)
