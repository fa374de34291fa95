-- Move the delay of a DELAYED workflow: it stays DELAYED until :delay_until, or becomes
-- ENQUEUED at once (waking workers) when that is not after :now. One statement. The row is
-- returned as found even when it was not DELAYED, so the caller can say why nothing moved;
-- locking it first makes that status the one the update was judged on.
WITH found AS (
    SELECT id, name, status FROM {schema}.workflows WHERE id = %(id)s FOR UPDATE
),
moved AS (
    UPDATE {schema}.workflows w
    SET delay_until = %(delay_until)s,
        status = CASE WHEN %(delay_until)s > %(now)s THEN 'DELAYED' ELSE 'ENQUEUED' END,
        updated_at = %(now)s
    FROM found f
    WHERE w.id = f.id AND w.status = 'DELAYED'
    RETURNING w.id, w.queue, w.status
)
SELECT f.id, f.name, f.status, m.id IS NOT NULL,
       CASE WHEN m.status = 'ENQUEUED' THEN pg_notify(%(channel)s, m.queue) END
FROM found f LEFT JOIN moved m ON m.id = f.id
