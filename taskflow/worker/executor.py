"""Threads that run claimed workflows: used inside each prefork child, and directly by the
``threads`` and ``solo`` pools."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from taskflow.app import Taskflow
from taskflow.execution import WorkerMode
from taskflow.models import WorkflowRow
from taskflow.worker.ipc import Done

log = logging.getLogger("taskflow.worker")

_STOP = None


class Executor:
    """``threads`` threads taking rows from a queue and reporting each end through
    ``report`` (called from the executing thread)."""

    def __init__(
        self,
        app: Taskflow,
        mode: WorkerMode,
        threads: int,
        report: Callable[[Done], None],
        name: str = "taskflow-exec",
    ) -> None:
        self._app = app
        self._mode = mode
        self._report = report
        self._queue: queue.SimpleQueue[WorkflowRow | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]

    def start(self) -> None:
        """Start the threads."""
        for thread in self._threads:
            thread.start()

    def submit(self, row: WorkflowRow) -> None:
        """Queue a claimed workflow for the next free thread."""
        self._queue.put(row)

    def stop(self, timeout: float | None = None) -> None:
        """Let queued work finish, then end the threads (waiting up to ``timeout``)."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self) -> None:
        while True:
            row = self._queue.get()
            if row is None:
                return
            self._report(self.run_one(row))

    def run_one(self, row: WorkflowRow) -> Done:
        """Run one claimed workflow to its end here."""
        try:
            finish = self._app.run_claimed(row, self._mode)
        except BaseException:
            # The outcome could not be recorded (a database error mid-way, or the worker is
            # being torn down): the workflow stays PENDING and goes back to its queue.
            log.exception("workflow %r (%s) could not run to an outcome", row.id, row.name)
            return Done(row.id, failed=True)
        return Done(row.id, finish=finish)


__all__ = ["Executor"]
