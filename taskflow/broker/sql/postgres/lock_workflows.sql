-- Lock workflow rows in the given order (the first of the transaction that then sends,
-- publishes or parks). A send or set_event and a park of the workflow it should wake both
-- lock the row first, so whichever comes second runs its statement after the other
-- committed, and sees it: the park sees the message or event, or the writer sees the
-- parked row. A park on another workflow's event locks that workflow first, then its own.
SELECT id FROM {schema}.workflows
WHERE id = ANY(%(ids)s::text[])
ORDER BY array_position(%(ids)s::text[], id)
FOR NO KEY UPDATE
