SELECT status FROM workflows WHERE id = :workflow_id
