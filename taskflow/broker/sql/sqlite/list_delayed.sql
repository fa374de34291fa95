-- DELAYED workflows (countdown, eta, debounce, retry delay, or parked waiting) in wake
-- order, those waiting without a time limit last.
SELECT id, name, queue, delay_until, wait_kind, wait_on, wait_key, retries, created_at
FROM workflows
WHERE status = 'DELAYED' AND (:queue IS NULL OR queue = :queue)
ORDER BY delay_until IS NULL, delay_until, created_at, id
LIMIT :limit
