-- One page of workflows for list_workflows, newest (or oldest) first. The broker keeps only
-- the tagged lines it needs, and every value stays a bind parameter:
--
-- * "-- filter:<name>": the filters given (one status is an equality, several an array);
-- * "-- order:<newest|oldest>": the order asked for;
-- * "-- lead:<name>..." when exactly one of status, name, queue, user and app_version is given,
--   with one value: that filter becomes "= ANY(ARRAY[value])" and leads the ORDER BY. Each
--   of them leads an index ending with created_at (migration 6), and these two changes make
--   that index the only one giving the order. With a plain equality the planner may walk
--   ix_workflows_created_at instead, filtering as it goes: it assumes the matching rows are
--   spread evenly in time, and when they are not (an old app version, a workflow name no
--   longer used) it reads most of the table for one page. With one value the lead column
--   is constant, so the order is still by created_at.
--
-- Inputs and outputs are read only when asked for.
SELECT id, name, status,
       CASE WHEN %(load_inputs)s THEN inputs END AS inputs,
       CASE WHEN %(load_outputs)s THEN output END AS output,
       error, queue, executor_id, app_version, user_name AS "user", parent_id, priority,
       attempts, created_at, started_at, finished_at, timeout_ms, deadline_at, partition_key,
       dedup_id, delay_until, expires_at, retries
FROM {schema}.workflows
WHERE TRUE
  AND status = %(status)s                               -- filter:status
  AND status = ANY(%(statuses)s::text[])                -- filter:statuses
  AND status = ANY(ARRAY[%(status)s::text])             -- lead:status
  AND name = %(name)s                                   -- filter:name
  AND name = ANY(ARRAY[%(name)s::text])                 -- lead:name
  AND queue = %(queue)s                                 -- filter:queue
  AND queue = ANY(ARRAY[%(queue)s::text])               -- lead:queue
  AND user_name = %(user)s                              -- filter:user
  AND user_name = ANY(ARRAY[%(user)s::text])            -- lead:user
  AND app_version = %(app_version)s                     -- filter:app_version
  AND app_version = ANY(ARRAY[%(app_version)s::text])   -- lead:app_version
  AND created_at >= %(start)s                           -- filter:start
  AND created_at < %(end)s                              -- filter:end
ORDER BY
    status DESC,                                        -- lead:status:newest
    status,                                             -- lead:status:oldest
    name DESC,                                          -- lead:name:newest
    name,                                               -- lead:name:oldest
    queue DESC,                                         -- lead:queue:newest
    queue,                                              -- lead:queue:oldest
    user_name DESC,                                     -- lead:user:newest
    user_name,                                          -- lead:user:oldest
    app_version DESC,                                   -- lead:app_version:newest
    app_version,                                        -- lead:app_version:oldest
    created_at DESC, seq DESC                           -- order:newest
    created_at, seq                                     -- order:oldest
LIMIT %(limit)s OFFSET %(offset)s
