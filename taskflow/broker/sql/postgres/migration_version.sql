SELECT COALESCE(MAX(version), 0) FROM {schema}.schema_migrations
