-- The earliest next fire time of the unpaused schedules (NULL: none), from ix_schedules_due.
SELECT min(next_fire_at) FROM schedules WHERE NOT paused
