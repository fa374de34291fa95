-- Insert or refresh an executor's heartbeat row (an UNLOGGED table: no WAL, no fsync).
-- Every beat carries the registered workflow names too: a row lost with a crash of the
-- server (unlogged) or reaped meanwhile comes back whole at the next beat.
INSERT INTO {schema}.executors
    (executor_id, kind, name, hostname, pid, app_version, queues, concurrency, started_at,
     heartbeat_at, pool, workflows)
VALUES
    (%(executor_id)s, %(kind)s, %(name)s, %(hostname)s, %(pid)s, %(app_version)s, %(queues)s,
     %(concurrency)s, %(started_at)s, %(heartbeat_at)s, %(pool)s, %(workflows)s)
ON CONFLICT (executor_id) DO UPDATE SET
    kind = EXCLUDED.kind, name = EXCLUDED.name, hostname = EXCLUDED.hostname,
    pid = EXCLUDED.pid, app_version = EXCLUDED.app_version, queues = EXCLUDED.queues,
    concurrency = EXCLUDED.concurrency, started_at = EXCLUDED.started_at,
    heartbeat_at = EXCLUDED.heartbeat_at, pool = EXCLUDED.pool, workflows = EXCLUDED.workflows
