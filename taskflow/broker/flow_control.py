"""What both dialects share for claiming from limited queues: limits as bind parameters,
stored declarations read back, and the partition cursor that makes claims go round.

A limited queue is claimed in its own transaction, serialised per queue (or per partition)
with every other claimer of it, so counting running work and claiming never race: on
Postgres an advisory lock scoped to the queue or partition, on SQLite ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from taskflow.models import WorkflowRow
from taskflow.queues import Queue, QueueRecord, RateLimit

MIN_KEYS_PER_CLAIM = 32
"""Partitions looked at per claim at least (more when more slots are free)."""

PRUNE_INTERVAL_MS = 1_000
"""How often one broker prunes a rate-limited queue's start log."""


def limits_params(queue: Queue, now: int) -> dict[str, Any]:
    """Bind parameters of a queue's limits (None: no such limit)."""
    rate = queue.rate_limit
    return {
        "queue": queue.name,
        "concurrency": queue.concurrency,
        "worker_concurrency": queue.worker_concurrency,
        "rate_count": rate.count if rate is not None else None,
        # Starts at or before ``since`` are outside the window (it slides: (now - period, now]).
        "since": now - rate_period_ms(rate) if rate is not None else now,
    }


def rate_period_ms(rate: RateLimit) -> int:
    """A rate limit's period in whole milliseconds (at least 1)."""
    return max(1, round(rate.per * 1000))


def declaration_params(specs: Sequence[Queue]) -> list[dict[str, Any]]:
    """One parameter set per declaration, in name order (so concurrent upserts lock rows in
    one order)."""
    out = []
    for spec in sorted(specs, key=lambda q: q.name):
        rate = spec.rate_limit
        out.append(
            {
                "name": spec.name,
                "concurrency": spec.concurrency,
                "worker_concurrency": spec.worker_concurrency,
                "rate_count": rate.count if rate is not None else None,
                "rate_per_ms": rate_period_ms(rate) if rate is not None else None,
                "partitioned": int(spec.partitioned),
            }
        )
    return out


def queue_record(row: Sequence[Any]) -> QueueRecord:
    """A row of ``queue_specs.sql`` as a declaration and the version that made it."""
    name, concurrency, worker_concurrency, rate_count, rate_per_ms, partitioned, version = row
    rate = RateLimit(int(rate_count), rate_per_ms / 1000) if rate_count is not None else None
    spec = Queue(
        name,
        concurrency=concurrency,
        worker_concurrency=worker_concurrency,
        rate_limit=rate,
        partitioned=bool(partitioned),
    )
    return QueueRecord(spec, version)


def keys_per_claim(limit: int) -> int:
    """How many partitions one claim looks at for ``limit`` free slots."""
    return max(MIN_KEYS_PER_CLAIM, 2 * limit)


class ClaimState:
    """Per-broker memory of limited claims: where the partition walk of each queue resumes,
    and when each queue's start log was last pruned. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: dict[str, str] = {}
        self._pass_claimed: dict[str, bool] = {}
        self._pruned: dict[str, int] = {}

    def cursor(self, queue: str) -> str:
        """The partition key after which the next walk of ``queue`` starts ('' = first)."""
        with self._lock:
            return self._cursors.get(queue, "")

    def advance(self, queue: str, found: Sequence[str], max_keys: int, claimed: int) -> bool:
        """Move the walk past ``found`` (which gave ``claimed`` workflows); True if the caller
        should claim again at once: partitions of this pass remain unvisited, or the pass
        reached the end having claimed something (so work flows: start the next pass now).
        A whole pass that claimed nothing waits for news instead of spinning."""
        with self._lock:
            if self._cursors.get(queue, "") == "":
                self._pass_claimed[queue] = False
            if claimed:
                self._pass_claimed[queue] = True
            if len(found) >= max_keys:
                self._cursors[queue] = found[-1]
                return True
            self._cursors[queue] = ""
            return self._pass_claimed.get(queue, False)

    def due_for_pruning(self, queue: str, now: int) -> bool:
        """True at most once per :data:`PRUNE_INTERVAL_MS` per queue."""
        with self._lock:
            if now - self._pruned.get(queue, 0) < PRUNE_INTERVAL_MS:
                return False
            self._pruned[queue] = now
            return True


def rate_upkeep(
    queue: Queue,
    state: ClaimState,
    claimed: int,
    limit: int,
    keys: Sequence[str],
    now: int,
    oldest_start: Callable[[], int | None],
    prune: Callable[[], None],
) -> int | None:
    """After a claim, inside its transaction: on a rate-limited queue, read the oldest start
    in the window when the claim fell short (so :func:`retry_hint` can say when room opens)
    and prune the start log now and then. Returns that oldest start, or None."""
    if queue.rate_limit is None:
        return None
    oldest = oldest_start() if claimed < limit and keys else None
    if state.due_for_pruning(queue.name, now):
        prune()
    return oldest


def retry_hint(
    queue: Queue,
    claimed: Sequence[WorkflowRow],
    limit: int,
    oldest_start: int | None,
    now: int,
    more_partitions: bool,
) -> int | None:
    """When to claim from ``queue`` again without waiting for a notification, or None.

    Immediately when partitions were left unvisited (or were being claimed by another
    worker); when the rate limit held claims back, one period after the oldest start in the
    window, the moment room opens again."""
    if len(claimed) >= limit:
        return None
    if more_partitions:
        return now
    rate = queue.rate_limit
    if rate is not None and oldest_start is not None:
        return oldest_start + rate_period_ms(rate)
    return None


__all__ = [
    "MIN_KEYS_PER_CLAIM",
    "PRUNE_INTERVAL_MS",
    "ClaimState",
    "declaration_params",
    "keys_per_claim",
    "limits_params",
    "queue_record",
    "rate_period_ms",
    "rate_upkeep",
    "retry_hint",
]
