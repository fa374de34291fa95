-- Delete a schedule; a row returns if it existed.
DELETE FROM {schema}.schedules WHERE name = %(name)s RETURNING name
