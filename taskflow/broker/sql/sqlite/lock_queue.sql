-- Nothing to lock: a claim runs inside BEGIN IMMEDIATE, which already admits one writer at a
-- time, so its counts stay true until it commits. Kept so both dialects name the same steps.
SELECT 1
