"""The queue half of the Postgres broker: batch enqueue, claim, tick, and the LISTEN side.

Each hot-path call is one statement, so one round trip: a batch is bound as arrays (one per
column, built with list comprehensions) and expanded server-side with ``unnest``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from taskflow.broker.base import Listener
from taskflow.broker.sql_broker import (
    DEFAULT_QUEUE,
    enqueue_results,
    enqueue_status,
    workflow_row,
)
from taskflow.errors import DatabaseConnectionError
from taskflow.models import EnqueueResult, Finish, NewWorkflow, WorkflowRow

Cursor = psycopg.Cursor[tuple[Any, ...]]


def channel_name(schema: str) -> str:
    """The NOTIFY channel of a schema (identifiers stop at 63 bytes; a clash of two long
    schema names costs only a spurious wake-up)."""
    return f"taskflow_{schema}"[:63]


def enqueue_params(news: Sequence[NewWorkflow], now: int, channel: str) -> dict[str, Any]:
    """Bind parameters of ``enqueue.sql``: one array per column."""
    return {
        "ids": [n.id for n in news],
        "names": [n.name for n in news],
        "statuses": [enqueue_status(n, now) for n in news],
        "queues": [n.queue or DEFAULT_QUEUE for n in news],
        "priorities": [n.priority or 0 for n in news],
        "inputs": [n.inputs for n in news],
        "app_versions": [n.app_version for n in news],
        "users": [n.user for n in news],
        "parent_ids": [n.parent_id for n in news],
        "partition_keys": [n.partition_key for n in news],
        "dedup_ids": [n.dedup_id for n in news],
        "created_ats": [n.created_at for n in news],
        "timeouts": [n.timeout_ms for n in news],
        "delay_untils": [n.delay_until for n in news],
        "expires_ats": [n.expires_at for n in news],
        "now": now,
        "channel": channel,
    }


def enqueue(
    cur: Cursor, queries: dict[str, str], channel: str, news: Sequence[NewWorkflow], now: int
) -> list[EnqueueResult]:
    """Run ``enqueue.sql`` on ``cur`` (committing only if its connection autocommits), then,
    only if some entry wrote nothing, one more query saying why."""
    if not news:
        return []
    cur.execute(queries["enqueue"], enqueue_params(news, now, channel))
    inserted = {r[0]: r[1] for r in cur.fetchall()}

    def conflicts(missing: list[int]) -> dict[int, tuple[bool, str | None]]:
        params = {
            "ids": [news[i].id for i in missing],
            "queues": [news[i].queue or DEFAULT_QUEUE for i in missing],
            "dedup_ids": [news[i].dedup_id for i in missing],
        }
        cur.execute(queries["enqueue_conflicts"], params)
        # ``ord`` counts from 1 over the missing entries.
        return {missing[r[0] - 1]: (bool(r[1]), r[2]) for r in cur.fetchall()}

    return enqueue_results(news, inserted, conflicts)


def claim_params(
    executor_id: str,
    queues: Sequence[str],
    app_version: str,
    limit: int,
    now: int,
    finishes: Sequence[Finish],
) -> dict[str, Any]:
    """Bind parameters of ``claim.sql``."""
    return {
        "executor_id": executor_id,
        "queues": list(queues),
        "app_version": app_version,
        "limit": max(0, limit),
        "now": now,
        "f_ids": [f.id for f in finishes],
        "f_statuses": [f.status.value for f in finishes],
        "f_outputs": [f.output for f in finishes],
        "f_errors": [f.error for f in finishes],
    }


def claimed_rows(result: Sequence[tuple[Any, ...]]) -> list[WorkflowRow]:
    """Rows of a claim statement (``get_workflow.sql`` order, then ``fresh``)."""
    claimed = []
    for r in result:
        row = workflow_row(r[:-1])
        row.fresh = bool(r[-1])
        claimed.append(row)
    return claimed


class PostgresListener(Listener):
    """LISTEN on the schema's channel over a connection of its own (autocommit).

    A dropped connection never makes :meth:`wait` raise: the call that notices it returns
    True (the caller polls), the next one reconnects and returns True again, since
    notifications sent while it was away are lost. While the server stays unreachable,
    ``wait`` sleeps its timeout and returns False (as it does once closed)."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], channel: str) -> None:
        self._connect = connect
        self.channel = channel
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = self._open()

    def _open(self) -> psycopg.Connection[Any]:
        conn = self._connect()
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except BaseException:
            conn.close()
            raise
        return conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def wait(self, timeout: float) -> bool:
        """Block until a notification or ``timeout`` seconds; drain what is pending."""
        timeout = max(0.0, timeout)
        if self._closed:
            time.sleep(timeout)
            return False
        conn = self._conn
        if conn is None or conn.closed:
            self._discard()
            try:
                self._conn = self._open()
            except (DatabaseConnectionError, psycopg.Error):
                time.sleep(timeout)
                return False
            return True
        try:
            got = False
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                got = True
            if got:
                for _ in conn.notifies(timeout=0):
                    pass
            return got
        except psycopg.Error:
            self._discard()
            return True

    def fileno(self) -> int | None:
        """The connection's socket (None while disconnected)."""
        conn = self._conn
        if conn is None or conn.closed:
            return None
        return conn.fileno()

    def close(self) -> None:
        """Close the connection (which ends the LISTEN); ``wait`` then only sleeps."""
        self._closed = True
        self._discard()


__all__ = [
    "Cursor",
    "PostgresListener",
    "channel_name",
    "claim_params",
    "claimed_rows",
    "enqueue",
    "enqueue_params",
]
