-- Every app version workers have recorded, the latest first (the newest version_at: the
-- version first seen last, unless set_latest_version made another one the latest since).
SELECT version, created_at, version_at
FROM {schema}.app_versions
ORDER BY version_at DESC, created_at DESC, version
