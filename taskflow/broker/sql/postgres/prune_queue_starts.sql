-- Forget starts that no sliding window can count any more.
DELETE FROM {schema}.queue_starts
WHERE queue = %(queue)s AND started_at <= %(since)s
