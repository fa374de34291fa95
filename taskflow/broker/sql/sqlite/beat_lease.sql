-- The beat lease as stored.
SELECT holder, term, lease_until FROM beat_leader WHERE name = 'beat'
