-- The waiting or running workflow holding a dedup key (served by ux_workflows_dedup).
SELECT id FROM {schema}.workflows
WHERE queue = %(queue)s AND dedup_id = %(dedup_id)s
  AND status IN ('ENQUEUED', 'DELAYED', 'PENDING')
