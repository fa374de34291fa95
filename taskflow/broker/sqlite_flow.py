"""Claims from limited queues on SQLite, inside the caller's ``BEGIN IMMEDIATE`` transaction.

One writer at a time holds the database, so counting and claiming cannot race; the room of
each partition is worked out here, between small in-process queries.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from taskflow.broker.flow_control import (
    ClaimState,
    keys_per_claim,
    limits_params,
    rate_upkeep,
    retry_hint,
)
from taskflow.broker.sql_broker import WORKFLOW_COLUMNS, workflow_row
from taskflow.broker.sqlite_queue import json_list, statements
from taskflow.models import LimitedClaim, WorkflowRow
from taskflow.queues import Queue


def _room(limit: int, limits: dict[str, Any], running: int, mine: int, starts: int) -> int:
    room = limit
    for cap, used in (
        (limits["concurrency"], running),
        (limits["worker_concurrency"], mine),
        (limits["rate_count"], starts),
    ):
        if cap is not None:
            room = min(room, cap - used)
    return max(0, room)


def _sorted_rows(rows: list[Any]) -> list[WorkflowRow]:
    # RETURNING comes in no particular order: restore the claim order.
    rows.sort(key=lambda r: (r[11], r[13], r[WORKFLOW_COLUMNS]))
    return [workflow_row(r[:WORKFLOW_COLUMNS]) for r in rows]


def claim_limited(
    conn: sqlite3.Connection,
    queries: dict[str, str],
    state: ClaimState,
    executor_id: str,
    queue: Queue,
    app_version: str,
    limit: int,
    now: int,
) -> LimitedClaim:
    """Claim up to ``limit`` workflows of ``queue`` within its limits."""
    limits = limits_params(queue, now)
    base: dict[str, Any] = {
        "queue": queue.name,
        "executor_id": executor_id,
        "app_version": app_version,
        "now": now,
        "since": limits["since"],
    }
    more = False
    if queue.partitioned:
        rows, keys, more = _claim_partitions(conn, queries, state, queue, limits, base, limit)
    else:
        keys = [""]
        count, take, log = statements(queries["claim_queue"])
        running, mine, starts = conn.execute(count, base).fetchone()
        room = _room(limit, limits, running, mine, starts)
        rows = conn.execute(take, {**base, "limit": room}).fetchall() if room else []
        if rows and queue.rate_limit is not None:
            conn.executemany(log, [{**base, "key": ""}] * len(rows))

    def oldest_start() -> int | None:
        got = conn.execute(queries["rate_window"], {**base, "keys": json_list(keys)}).fetchone()
        return got[0] if got is not None else None

    def prune() -> None:
        conn.execute(queries["prune_queue_starts"], base)

    oldest = rate_upkeep(queue, state, len(rows), limit, keys, now, oldest_start, prune)
    claimed = _sorted_rows(rows)
    return LimitedClaim(claimed, retry_hint(queue, claimed, limit, oldest, now, more))


def _claim_partitions(
    conn: sqlite3.Connection,
    queries: dict[str, str],
    state: ClaimState,
    queue: Queue,
    limits: dict[str, Any],
    base: dict[str, Any],
    limit: int,
) -> tuple[list[Any], list[str], bool]:
    """Claim round the partitions: each partition's first workflow before any second."""
    max_keys = keys_per_claim(limit)
    found = conn.execute(
        queries["lock_partitions"],
        {"queue": queue.name, "after": state.cursor(queue.name), "max_keys": max_keys},
    ).fetchall()
    keys = [r[0] for r in found]
    rows = _take_round(conn, queries, queue, limits, base, limit, keys)
    return rows, keys, state.advance(queue.name, keys, max_keys, len(rows))


def _take_round(
    conn: sqlite3.Connection,
    queries: dict[str, str],
    queue: Queue,
    limits: dict[str, Any],
    base: dict[str, Any],
    limit: int,
    keys: list[str],
) -> list[Any]:
    if not keys:
        return []
    running_q, starts_q, pick_q, take_q, log_q = statements(queries["claim_partitions"])
    listed = {**base, "keys": json_list(keys)}
    running = {k: (n, mine) for k, n, mine in conn.execute(running_q, listed)}
    starts = dict(conn.execute(starts_q, listed).fetchall())
    # (turn, priority, created_at, rowid, id): every partition's first before any second.
    candidates: list[tuple[int, int, int, int, str]] = []
    for key in keys:
        n, mine = running.get(key, (0, 0))
        room = _room(limit, limits, n, mine, starts.get(key, 0))
        if room:
            picked = conn.execute(pick_q, {**base, "key": key, "limit": room}).fetchall()
            candidates += [(turn, p, c, rid, i) for turn, (i, p, c, rid) in enumerate(picked)]
    candidates.sort()
    ids = [c[4] for c in candidates[:limit]]
    if not ids:
        return []
    rows = conn.execute(take_q, {**base, "ids": json_list(ids)}).fetchall()
    if queue.rate_limit is not None:
        conn.executemany(log_q, [{**base, "key": r[18]} for r in rows])
    return rows


__all__ = ["claim_limited"]
