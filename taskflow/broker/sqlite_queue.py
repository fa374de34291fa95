"""The queue half of the SQLite broker: enqueue, claim, tick, and a listener that polls.

SQLite has no notifications; a write by another connection shows as a new
``PRAGMA data_version``, which a listener polls on a connection of its own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from taskflow.broker.base import Listener
from taskflow.broker.sql_broker import (
    DEFAULT_QUEUE,
    WORKFLOW_COLUMNS,
    enqueue_results,
    enqueue_status,
    workflow_row,
)
from taskflow.models import EnqueueResult, Finish, NewWorkflow, QueueTick, WorkflowRow

POLL_INTERVAL = 0.01
"""Seconds between two looks at ``PRAGMA data_version``."""


def statements(text: str) -> list[str]:
    """The statements of a multi-statement query file (each ends with ``;`` at a line end)."""
    return [s.strip() for s in text.split(";\n") if s.strip()]


def json_list(values: Sequence[str]) -> str:
    """A list bound as JSON text (expanded with ``json_each``)."""
    return msgspec.json.encode(list(values)).decode()


def enqueue(
    conn: sqlite3.Connection, queries: dict[str, str], news: Sequence[NewWorkflow], now: int
) -> list[EnqueueResult]:
    """Insert each entry (the caller holds the transaction), then say why some wrote
    nothing. Rows are read as plain tuples whatever the connection's row factory."""
    cur = conn.cursor()
    cur.row_factory = None
    insert = queries["enqueue"]
    inserted: dict[str, str | None] = {}
    for n in news:
        cur.execute(
            insert,
            {
                "id": n.id,
                "name": n.name,
                "status": enqueue_status(n, now),
                "queue": n.queue or DEFAULT_QUEUE,
                "priority": n.priority or 0,
                "inputs": n.inputs,
                "app_version": n.app_version,
                "user": n.user,
                "parent_id": n.parent_id,
                "partition_key": n.partition_key,
                "dedup_id": n.dedup_id,
                "created_at": n.created_at,
                "now": now,
                "timeout_ms": n.timeout_ms,
                "delay_until": n.delay_until,
                "expires_at": n.expires_at,
            },
        )
        if cur.rowcount > 0:
            inserted.setdefault(n.id, n.dedup_id)

    def conflicts(missing: list[int]) -> dict[int, tuple[bool, str | None]]:
        found: dict[int, tuple[bool, str | None]] = {}
        for i in missing:
            n = news[i]
            params = {"id": n.id, "queue": n.queue or DEFAULT_QUEUE, "dedup_id": n.dedup_id}
            row = cur.execute(queries["enqueue_conflicts"], params).fetchone()
            found[i] = (bool(row[0]), row[1])
        return found

    return enqueue_results(news, inserted, conflicts)


def claim(
    conn: sqlite3.Connection,
    queries: dict[str, str],
    executor_id: str,
    queues: Sequence[str],
    app_version: str,
    limit: int,
    now: int,
    finishes: Sequence[Finish],
) -> list[WorkflowRow]:
    """Write finishes, then claim (the caller holds a ``BEGIN IMMEDIATE`` transaction)."""
    finish, take = statements(queries["claim"])
    if finishes:
        conn.executemany(
            finish,
            [
                {
                    "id": f.id,
                    "status": f.status.value,
                    "output": f.output,
                    "error": f.error,
                    "now": now,
                    "executor_id": executor_id,
                }
                for f in finishes
            ],
        )
    if limit <= 0:
        return []
    params = {
        "executor_id": executor_id,
        "queues": json_list(queues),
        "app_version": app_version,
        "limit": limit,
        "now": now,
    }
    rows = conn.execute(take, params).fetchall()
    # RETURNING comes in no particular order: restore the claim order.
    rows.sort(key=lambda r: (r[11], r[13], r[WORKFLOW_COLUMNS]))
    return [workflow_row(r[:WORKFLOW_COLUMNS]) for r in rows]


def tick(conn: sqlite3.Connection, queries: dict[str, str], now: int) -> QueueTick:
    """Promote, expire, report (the caller holds a ``BEGIN IMMEDIATE`` transaction)."""
    promote, wake, expire, next_due = statements(queries["tick"])
    promoted = conn.execute(promote, {"now": now}).rowcount
    promoted += conn.execute(wake, {"now": now}).rowcount
    expired = conn.execute(expire, {"now": now}).rowcount
    row = conn.execute(next_due).fetchone()
    return QueueTick(promoted=promoted, expired=expired, next_due=row[0] if row else None)


class SQLiteListener(Listener):
    """Wakes when another connection commits a change to the database file: polls
    ``PRAGMA data_version`` on its own connection every ~10 ms."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._version = self._data_version(conn)

    @staticmethod
    def _data_version(conn: sqlite3.Connection) -> int:
        row: Any = conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def wait(self, timeout: float) -> bool:
        """True as soon as the database changed, False after ``timeout`` seconds."""
        conn = self._conn
        if conn is None:  # closed: nothing will ever wake it
            time.sleep(max(0.0, timeout))
            return False
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            version = self._data_version(conn)
            if version != self._version:
                self._version = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POLL_INTERVAL, left))

    def fileno(self) -> int | None:
        """None: there is nothing to select on; poll :meth:`wait`."""
        return None

    def close(self) -> None:
        """Close the listener's connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


__all__ = ["POLL_INTERVAL", "SQLiteListener", "claim", "enqueue", "json_list", "statements", "tick"]
