-- The rows a Postgres send, set_event or park locks first. SQLite admits one writer at a
-- time (each of those runs in one write transaction), so it never needs this; kept so both
-- dialects hold the same named queries.
SELECT id FROM workflows WHERE id IN (SELECT value FROM json_each(:ids))
