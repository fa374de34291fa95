SELECT executor_id, kind, name, hostname, pid, app_version, queues, concurrency, started_at,
       heartbeat_at, pool, workflows
FROM {schema}.executors
ORDER BY started_at, executor_id
