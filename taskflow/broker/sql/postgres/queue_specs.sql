-- Every queue with the limits in force and the version that declared them.
SELECT name, concurrency, worker_concurrency, rate_count, rate_per_ms, partitioned,
       app_version
FROM {schema}.queues
ORDER BY name
