-- One page of workflows for list_workflows, newest (or oldest) first. The broker keeps the
-- lines tagged "-- filter:<name>" only for the filters given and the one "-- order:<name>"
-- line asked for, and drops the other tagged lines; every value is a bind parameter. Each
-- filter leads an index ending with created_at (and, implicitly, the rowid: FIFO within one
-- millisecond), so a page walks its rows in order and stops after it. Inputs and outputs are
-- read only when asked for.
SELECT id, name, status,
       CASE WHEN :load_inputs THEN inputs END AS inputs,
       CASE WHEN :load_outputs THEN output END AS output,
       error, queue, executor_id, app_version, user_name AS "user", parent_id, priority,
       attempts, created_at, started_at, finished_at, timeout_ms, deadline_at, partition_key,
       dedup_id, delay_until, expires_at, retries
FROM workflows
WHERE 1
  AND status = :status                                        -- filter:status
  AND status IN (SELECT value FROM json_each(:statuses))      -- filter:statuses
  AND name = :name                                            -- filter:name
  AND queue = :queue                                          -- filter:queue
  AND user_name = :user                                       -- filter:user
  AND app_version = :app_version                              -- filter:app_version
  AND created_at >= :start                                    -- filter:start
  AND created_at < :end                                       -- filter:end
ORDER BY created_at DESC, rowid DESC                          -- order:newest
ORDER BY created_at, rowid                                    -- order:oldest
LIMIT :limit OFFSET :offset
