"""Recovery of dead executors: run by every live worker on each heartbeat.

An executor (a worker, or a process running workflows directly) whose heartbeat is older
than the timeout is dead: its PENDING workflows go back to their queues, and the next claim
counts one recovery attempt. An executor with no heartbeat row at all (its row was lost, or
it predates heartbeats) must look dead for a whole timeout, as this sweeper saw it, before
it is recovered: a freshly restarted database (where heartbeats are unlogged) must not make
live workers look dead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from taskflow.app import Taskflow
from taskflow.clock import now_ms
from taskflow.models import OrphanRef
from taskflow.queues import DEFAULT_QUEUE
from taskflow.status import Status

log = logging.getLogger("taskflow.worker")

_REAP_EVERY = 30
"""Sweeps between removals of long-dead heartbeat rows."""
_REAP_AFTER = 10
"""Heartbeat timeouts a silent executor's row is kept (it may still own PENDING work)."""

_WAITING = {Status.PENDING, Status.ENQUEUED, Status.DELAYED}


class Sweeper:
    """Finds dead executors and gives their workflows back to their queues."""

    def __init__(
        self,
        app: Taskflow,
        worker_id: str,
        timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._me = worker_id
        self._timeout = timeout
        self._monotonic = monotonic
        self._missing_since: dict[str, float] = {}
        self._sweeps = 0
        self.recovered = 0
        """Workflows this sweeper gave back so far."""

    def sweep(self) -> int:
        """One pass; returns how many workflows went back to their queues."""
        broker = self._app.broker
        cutoff = now_ms(self._app.clock) - int(self._timeout * 1000)
        now = self._monotonic()
        dead: list[str] = []
        seen: set[str] = set()
        for executor_id, has_row in broker.stale_executors(cutoff):
            if executor_id == self._me:
                continue
            seen.add(executor_id)
            if has_row:
                dead.append(executor_id)
                continue
            first = self._missing_since.setdefault(executor_id, now)
            if now - first >= self._timeout:
                dead.append(executor_id)
        for gone in list(self._missing_since):
            if gone not in seen:
                del self._missing_since[gone]
        released = 0
        for executor_id in dead:
            released += self._recover(executor_id)
            self._missing_since.pop(executor_id, None)
        self.recovered += released
        self._sweeps += 1
        if self._sweeps % _REAP_EVERY == 0:
            self._reap(cutoff - int(self._timeout * 1000) * _REAP_AFTER)
        return released

    def _reap(self, cutoff: int) -> None:
        # Rows of processes that ran workflows directly and exited without app.close()
        # own nothing any more, and nobody else removes them.
        broker = self._app.broker
        for beat in broker.list_executors():
            if beat.executor_id != self._me and beat.heartbeat_at < cutoff:
                broker.remove_executor(beat.executor_id)

    def _recover(self, executor_id: str) -> int:
        broker = self._app.broker
        orphans = broker.orphans(executor_id)
        ids = {o.id for o in orphans}
        by_queue: dict[str, list[str]] = {}
        wanted = 0
        for orphan in orphans:
            if self._left_to_parent(orphan, ids):
                continue
            wanted += 1
            by_queue.setdefault(self._queue_of(orphan), []).append(orphan.id)
        released: list[str] = []
        now = now_ms(self._app.clock)
        for queue, batch in by_queue.items():
            released += broker.release(
                executor_id, batch, now, count_attempt=True, default_queue=queue
            )
        if released:
            log.warning(
                "executor %s stopped heartbeating: %d workflow(s) went back to their queues",
                executor_id,
                len(released),
            )
        if len(released) == wanted:
            broker.remove_executor(executor_id)
        return len(released)

    @staticmethod
    def _left_to_parent(orphan: OrphanRef, orphan_ids: set[str]) -> bool:
        # A child run inline by its parent (no queue) is resumed by the parent's replay
        # when the parent runs again; giving it to a queue too would run it twice at once.
        if orphan.queue is not None or orphan.parent_id is None:
            return False
        return orphan.parent_id in orphan_ids or orphan.parent_status in _WAITING

    def _queue_of(self, orphan: OrphanRef) -> str:
        if orphan.queue is not None:
            return orphan.queue
        wf = self._app._workflows.get(orphan.name)
        return (wf.queue if wf is not None else None) or DEFAULT_QUEUE


__all__ = ["Sweeper"]
