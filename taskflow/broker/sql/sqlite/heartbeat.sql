-- Insert or refresh an executor's heartbeat row. Every beat carries the registered
-- workflow names too: a row reaped meanwhile comes back whole at the next beat.
INSERT INTO executors
    (executor_id, kind, name, hostname, pid, app_version, queues, concurrency, started_at,
     heartbeat_at, pool, workflows)
VALUES
    (:executor_id, :kind, :name, :hostname, :pid, :app_version, :queues, :concurrency,
     :started_at, :heartbeat_at, :pool, :workflows)
ON CONFLICT (executor_id) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, hostname = excluded.hostname,
    pid = excluded.pid, app_version = excluded.app_version, queues = excluded.queues,
    concurrency = excluded.concurrency, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, pool = excluded.pool, workflows = excluded.workflows
