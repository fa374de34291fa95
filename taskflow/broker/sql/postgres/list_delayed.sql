-- DELAYED workflows (countdown, eta, debounce, retry delay, or parked waiting) in wake
-- order, those waiting without a time limit last; the partial index on DELAYED
-- delay_until holds them.
SELECT id, name, queue, delay_until, wait_kind, wait_on, wait_key, retries, created_at
FROM {schema}.workflows
WHERE status = 'DELAYED' AND (%(queue)s::text IS NULL OR queue = %(queue)s)
ORDER BY delay_until NULLS LAST, created_at, id
LIMIT %(limit)s
