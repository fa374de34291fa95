-- First statement of a debounce, inside BEGIN IMMEDIATE (one writer at a time, so what it
-- reads stays true until commit): the debounces row of (workflow name, key), created for a
-- new cycle (pointing at the workflow the caller is about to write, first call now).
INSERT INTO debounces (workflow_name, debounce_key, workflow_id, first_at, updated_at)
VALUES (:name, :key, :new_id, :now, :now)
ON CONFLICT (workflow_name, debounce_key) DO UPDATE SET updated_at = excluded.updated_at
RETURNING workflow_id, first_at
