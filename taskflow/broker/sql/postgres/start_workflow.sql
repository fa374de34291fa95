-- Write a new workflow row; the id is the idempotency key, so an existing id writes nothing.
INSERT INTO {schema}.workflows
    (id, name, status, queue, priority, inputs, executor_id, app_version, user_name, parent_id,
     attempts, created_at, updated_at, started_at, timeout_ms, deadline_at)
VALUES
    (%(id)s, %(name)s, %(status)s, %(queue)s, %(priority)s, %(inputs)s, %(executor_id)s,
     %(app_version)s, %(user)s, %(parent_id)s, %(attempts)s, %(now)s, %(now)s, %(started_at)s,
     %(timeout_ms)s, %(deadline_at)s)
ON CONFLICT (id) DO NOTHING
RETURNING id
