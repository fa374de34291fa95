-- The waiting or running workflow holding a dedup key (served by ux_workflows_dedup).
SELECT id FROM workflows
WHERE queue = :queue AND dedup_id = :dedup_id AND status IN ('ENQUEUED', 'DELAYED', 'PENDING')
