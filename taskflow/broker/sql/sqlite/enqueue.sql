-- Write one ENQUEUED / DELAYED workflow (run once per entry inside one BEGIN IMMEDIATE
-- transaction). An existing id or a held dedup key writes nothing (ON CONFLICT without a
-- target covers the primary key and the partial unique dedup index). The implicit rowid
-- grows with every insert: FIFO within one millisecond.
INSERT INTO workflows
    (id, name, status, queue, priority, inputs, app_version, user_name, parent_id,
     partition_key, dedup_id, attempts, created_at, updated_at, timeout_ms, delay_until,
     expires_at)
VALUES
    (:id, :name, :status, :queue, :priority, :inputs, :app_version, :user, :parent_id,
     :partition_key, :dedup_id, 0, :created_at, :now, :timeout_ms, :delay_until, :expires_at)
ON CONFLICT DO NOTHING
