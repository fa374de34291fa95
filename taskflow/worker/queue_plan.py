"""Which of a worker's queues are limited, and how a claim round shares free slots among them.

Limits are read from the system database, not from the worker's own app: every worker of
every version then enforces the same limits (the newest version's declarations, see
:meth:`~taskflow.broker.base.Broker.declare_queues`). They are re-read every
:data:`REFRESH_INTERVAL` seconds, so a deployment that changes a limit reaches running
workers within that time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from taskflow.app import Taskflow
from taskflow.clock import now_ms
from taskflow.models import Finish, WorkflowRow
from taskflow.queues import Queue, QueueRecord

log = logging.getLogger("taskflow.worker")

REFRESH_INTERVAL = 5.0
"""Seconds between two reads of the queue limits."""


class QueuePlan:
    """The served queues split into unlimited ones (claimed together, with the outcomes to
    write, in one statement) and limited ones (each claimed in a transaction of its own)."""

    def __init__(self, app: Taskflow, served: Sequence[str], executor_id: str) -> None:
        self.app = app
        self.executor_id = executor_id
        self.served = list(served)
        self.unlimited: list[str] = list(served)
        self.limited: list[Queue] = []
        self._next_refresh = 0.0
        self._turn = 0
        self._retry_at: dict[str, int] = {}

    def declare(self) -> None:
        """Record the app's queue declarations (and the served names) in the database, then
        read back the limits in force, logging where a newer version's differ."""
        app, now = self.app, now_ms(self.app.clock)
        declared = app.queues
        app.broker.declare_queues(list(declared.values()), app.app_version, now)
        others = [q for q in self.served if q not in declared]
        if others:
            app.broker.register_queues(others, now)
        records = self.refresh(force=True)
        for name, spec in declared.items():
            record = records.get(name)
            if record is not None and record.queue != spec:
                log.warning(
                    "queue %r: app version %s declares %s, but the limits of the newer "
                    "version %s apply: %s",
                    name,
                    app.app_version,
                    spec.describe(),
                    record.app_version,
                    record.queue.describe(),
                )

    def refresh(self, force: bool = False) -> dict[str, QueueRecord]:
        """Re-read the limits when due (or ``force``); returns what was read ({} if not)."""
        now = time.monotonic()
        if not force and now < self._next_refresh:
            return {}
        self._next_refresh = now + REFRESH_INTERVAL
        records = self.app.broker.queue_specs()
        limited = [records[q].queue for q in self.served if q in records and records[q].limited]
        names = {q.name for q in limited}
        self.limited = limited
        self.unlimited = [q for q in self.served if q not in names]
        return records

    def claim(
        self,
        claim_unlimited: Callable[[int, list[Finish]], list[WorkflowRow]],
        want: int,
        finishes: list[Finish],
    ) -> list[WorkflowRow]:
        """Claim up to ``want`` workflows from the unlimited queues (writing ``finishes`` in
        the same statement) and the limited ones. Every other round the limited queues go
        first (the outcomes are then written alone, first, so the counts see them), and they
        take turns among themselves, so no queue's backlog starves the others of slots."""
        limited_first = bool(self.limited) and self._turn % 2 == 1
        self._turn += 1
        claimed: list[WorkflowRow] = []
        take = want if self.unlimited and not limited_first else 0
        if take or finishes:
            # A failure here propagates: the caller keeps the outcomes to write them again.
            claimed += claim_unlimited(take, finishes)
        try:
            self._claim_limited(want - len(claimed), claimed)
            if limited_first and self.unlimited and len(claimed) < want:
                claimed += claim_unlimited(want - len(claimed), [])
        except Exception:
            if not claimed:
                raise
            # What was claimed before is committed and must run; the rest waits a round.
            log.exception("claiming work failed; running what was claimed")
        return claimed

    def _claim_limited(self, want: int, claimed: list[WorkflowRow]) -> None:
        """Claim from each limited queue in turn, appending to ``claimed`` as it goes (so a
        failure keeps what earlier queues gave)."""
        if want <= 0 or not self.limited:
            return
        broker, app = self.app.broker, self.app
        start = self._turn % len(self.limited)
        now = now_ms(app.clock)
        got_here = 0
        for queue in self.limited[start:] + self.limited[:start]:
            left = want - got_here
            if left <= 0:
                break
            got = broker.claim_limited(self.executor_id, queue, app.app_version, left, now)
            claimed += got.rows
            got_here += len(got.rows)
            if got.retry_at is not None:
                self._retry_at[queue.name] = got.retry_at
            else:
                self._retry_at.pop(queue.name, None)

    def next_retry(self) -> int | None:
        """The earliest time (ms) a limited queue asked to be claimed from again, or None."""
        return min(self._retry_at.values(), default=None)

    def take_due(self, now: int) -> bool:
        """Forget the retry times that have come (the caller claims now); True if any had."""
        due = [name for name, at in self._retry_at.items() if at <= now]
        for name in due:
            del self._retry_at[name]
        return bool(due)


__all__ = ["REFRESH_INTERVAL", "QueuePlan"]
