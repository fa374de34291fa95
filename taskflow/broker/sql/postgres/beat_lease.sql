-- The beat lease as stored.
SELECT holder, term, lease_until FROM {schema}.beat_leader WHERE name = 'beat'
