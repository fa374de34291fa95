-- Make a recorded version the latest: its version_at moves past every other one's (now, or
-- one millisecond after the newest when clocks disagree), so its queue declarations win from
-- its workers' next declaration on. No row: the version was never recorded.
UPDATE app_versions
SET version_at = max(:now, (SELECT max(version_at) + 1 FROM app_versions))
WHERE version = :version
RETURNING version
