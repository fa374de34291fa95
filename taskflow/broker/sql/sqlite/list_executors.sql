SELECT executor_id, kind, name, hostname, pid, app_version, queues, concurrency, started_at,
       heartbeat_at
FROM executors
ORDER BY started_at, executor_id
