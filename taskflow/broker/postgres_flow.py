"""Claims from limited queues on Postgres: lock, then count and claim, in one transaction.

The lock must be taken by an earlier statement than the count: a READ COMMITTED statement
reads the snapshot taken when it began, so a count in the statement that waited for the lock
could miss what the previous holder claimed. Two statements, two round trips, only for
limited queues.
"""

from __future__ import annotations

from typing import Any

import psycopg

from taskflow.broker.flow_control import (
    ClaimState,
    keys_per_claim,
    limits_params,
    rate_upkeep,
    retry_hint,
)
from taskflow.broker.postgres_queue import claimed_rows
from taskflow.models import LimitedClaim
from taskflow.queues import Queue


def claim_limited(
    conn: psycopg.Connection[Any],
    queries: dict[str, str],
    schema: str,
    state: ClaimState,
    executor_id: str,
    queue: Queue,
    app_version: str,
    limit: int,
    now: int,
) -> LimitedClaim:
    """Claim up to ``limit`` workflows of ``queue`` within its limits (``conn`` autocommits;
    this opens and commits one transaction)."""
    params = limits_params(queue, now)
    params.update(executor_id=executor_id, app_version=app_version, limit=limit, now=now)
    # The unit separator cannot appear in a queue name (no control characters).
    prefix = f"{schema}\x1f{queue.name}\x1f"
    more = False
    keys = [""]
    with conn.transaction():
        if queue.partitioned:
            max_keys = keys_per_claim(limit)
            found = conn.execute(
                queries["lock_partitions"],
                {
                    "queue": queue.name,
                    "after": state.cursor(queue.name),
                    "max_keys": max_keys,
                    "lock_prefix": prefix,
                },
            ).fetchall()
            keys = [r[0] for r in found if r[1]]
            rows = []
            if keys:
                claim = conn.execute(queries["claim_partitions"], {**params, "keys": keys})
                rows = claimed_rows(claim.fetchall())
            more = state.advance(queue.name, [r[0] for r in found], max_keys, len(rows))
            # A partition another claimer holds is served by it now; look again soon.
            more = more or len(keys) < len(found)
        else:
            conn.execute(queries["lock_queue"], {"lock_key": prefix})
            rows = claimed_rows(conn.execute(queries["claim_queue"], params).fetchall())
        window = {"queue": queue.name, "keys": keys, "since": params["since"]}

        def oldest_start() -> int | None:
            got = conn.execute(queries["rate_window"], window).fetchone()
            return got[0] if got is not None else None

        def prune() -> None:
            conn.execute(queries["prune_queue_starts"], window)

        oldest = rate_upkeep(queue, state, len(rows), limit, keys, now, oldest_start, prune)
    return LimitedClaim(rows, retry_hint(queue, rows, limit, oldest, now, more))


__all__ = ["claim_limited"]
