INSERT INTO {schema}.schema_migrations (version, name, applied_at)
VALUES (%(version)s, %(name)s, %(now)s)
