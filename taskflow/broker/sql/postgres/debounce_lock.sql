-- First statement of a debounce (debounce.sql is the second, in the same transaction): take
-- the debounces row of (workflow name, key), creating it for a new cycle (pointing at the
-- workflow the caller is about to write, first call now). The no-op update on conflict
-- locks the row, so every debounce of this key waits here until the one ahead commits;
-- read committed then gives the next statement a snapshot that sees what that one wrote.
INSERT INTO {schema}.debounces (workflow_name, debounce_key, workflow_id, first_at, updated_at)
VALUES (%(name)s, %(key)s, %(new_id)s, %(now)s, %(now)s)
ON CONFLICT (workflow_name, debounce_key) DO UPDATE SET updated_at = EXCLUDED.updated_at
RETURNING workflow_id, first_at
