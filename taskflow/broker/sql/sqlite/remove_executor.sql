DELETE FROM executors WHERE executor_id = :executor_id
