-- End the caller's lease at once (a clean shutdown hands over without waiting for it to run
-- out); holder and term stay recorded. Nothing happens if another beat holds it.
UPDATE beat_leader
SET lease_until = 0
WHERE name = 'beat' AND holder = :holder
