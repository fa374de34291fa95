-- Delete a schedule; a row returns if it existed.
DELETE FROM schedules WHERE name = :name RETURNING name
