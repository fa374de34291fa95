"""Where a worker's claimed workflows run: forked children (prefork) or threads of the
worker process itself (threads, solo). The supervisor sees both through :class:`Pool`."""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe
from typing import Any

from taskflow.app import Taskflow
from taskflow.execution import WorkerMode
from taskflow.models import WorkflowRow
from taskflow.worker.child import child_main
from taskflow.worker.executor import Executor
from taskflow.worker.ipc import Done, Run, Stop, decode_for_parent, encode
from taskflow.worker.options import WorkerOptions

log = logging.getLogger("taskflow.worker")


@dataclass
class Lost:
    """Workflows a pool lost: a child died (``crashed``) or was ended by ``time_limit``
    (``timed_out`` holds the ids that overran)."""

    ids: list[str]
    crashed: bool = True
    timed_out: list[str] = field(default_factory=list)


class Pool(abc.ABC):
    """Slots that run claimed workflows."""

    def __init__(self, app: Taskflow, options: WorkerOptions, worker_id: str) -> None:
        self.app = app
        self.options = options
        self.worker_id = worker_id

    @abc.abstractmethod
    def start(self) -> None:
        """Create the children or threads."""

    @abc.abstractmethod
    def free(self) -> int:
        """Slots ready for a workflow now."""

    @abc.abstractmethod
    def submit(self, rows: list[WorkflowRow]) -> None:
        """Run claimed rows (never more than :meth:`free`)."""

    @abc.abstractmethod
    def handles(self) -> list[Any]:
        """What the supervisor waits on (pipes), besides its own wake-up pipe."""

    @abc.abstractmethod
    def collect(self) -> tuple[list[Done], list[Lost]]:
        """Ends reported since the last call, and workflows lost to dead children or
        enforced time limits. Never blocks."""

    @abc.abstractmethod
    def running(self) -> list[str]:
        """Ids of the workflows running now."""

    @abc.abstractmethod
    def next_deadline(self) -> float | None:
        """Monotonic time of the earliest ``time_limit`` to enforce, or None."""

    @abc.abstractmethod
    def stop(self, timeout: float) -> list[str]:
        """End the pool: ``timeout`` 0 kills at once (cold). Returns the ids still running,
        which the supervisor hands back."""


# -- threads / solo ------------------------------------------------------------------------


class ThreadPool(Pool):
    """Workflows run in threads of the worker process. ``time_limit`` is enforced by raising
    :class:`TimeLimitExceeded` in the thread, since a thread cannot be ended from outside."""

    def __init__(self, app: Taskflow, options: WorkerOptions, worker_id: str, wake: int) -> None:
        super().__init__(app, options, worker_id)
        self._wake = wake
        self._lock = threading.Lock()
        self._done: deque[Done] = deque()
        self._running: set[str] = set()
        mode = WorkerMode(worker_id, defer_finish=True, hard_limit_in_thread=True)
        self._executor = Executor(app, mode, options.concurrency, self._report)

    def start(self) -> None:
        self.app._shared_executor = True
        self.app._worker_executor_id = self.worker_id
        self._executor.start()

    def _report(self, done: Done) -> None:
        with self._lock:
            self._done.append(done)
            self._running.discard(done.id)
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already
            os.write(self._wake, b"d")

    def free(self) -> int:
        with self._lock:
            return self.options.concurrency - len(self._running)

    def submit(self, rows: list[WorkflowRow]) -> None:
        with self._lock:
            self._running.update(r.id for r in rows)
        for row in rows:
            self._executor.submit(row)

    def handles(self) -> list[Any]:
        return []

    def collect(self) -> tuple[list[Done], list[Lost]]:
        with self._lock:
            done = list(self._done)
            self._done.clear()
        return done, []

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def next_deadline(self) -> float | None:
        return None

    def stop(self, timeout: float) -> list[str]:
        if timeout > 0:
            self._executor.stop(timeout)
        # Threads still running are abandoned with the process; their workflows go back.
        return self.running()


# -- prefork -------------------------------------------------------------------------------


@dataclass
class Child:
    """One forked child as the parent tracks it."""

    pid: int
    conn: Connection
    slots: int
    running: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    """id -> (monotonic start, time_limit seconds or None)."""
    retiring: bool = False
    stopping: bool = False


class ProcessPool(Pool):
    """Forked children, each running ``options.threads`` workflows at once. Children are
    replaced when they die or retire; ``time_limit`` kills the child running an overdue
    workflow."""

    def __init__(self, app: Taskflow, options: WorkerOptions, worker_id: str) -> None:
        super().__init__(app, options, worker_id)
        self._children: dict[int, Child] = {}
        self._closing = False
        self.quiesce: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext
        """Entered around each fork: the supervisor closes SQLite connections there, since a
        child that inherits an open SQLite file (even without using it) corrupts it."""

    def start(self) -> None:
        for _ in range(self.options.concurrency):
            self._spawn()

    def _spawn(self) -> None:
        parent_end, child_end = Pipe(duplex=True)
        for handler in logging.getLogger().handlers:
            handler.flush()
        with self.quiesce():
            pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                parent_end.close()
                for other in self._children.values():
                    other.conn.close()
                code = child_main(self.app, child_end, self.options, self.worker_id)
            except BaseException:
                log.exception("worker child crashed")
            finally:
                # Skip the parent's atexit handlers and finalizers: they own its sockets.
                os._exit(code)
        child_end.close()
        self._children[pid] = Child(pid, parent_end, self.options.threads)
        log.debug("started child %d", pid)

    def free(self) -> int:
        return sum(
            c.slots - len(c.running)
            for c in self._children.values()
            if not (c.retiring or c.stopping)
        )

    def submit(self, rows: list[WorkflowRow]) -> None:
        now = time.monotonic()
        batches: dict[int, list[WorkflowRow]] = {}
        for row in rows:
            open_children = [
                c
                for c in self._children.values()
                if not (c.retiring or c.stopping) and len(c.running) < c.slots
            ]
            child = max(open_children, key=lambda c: c.slots - len(c.running))
            wf = self.app._workflows.get(row.name)
            child.running[row.id] = (now, wf.time_limit if wf is not None else None)
            batches.setdefault(child.pid, []).append(row)
        for pid, batch in batches.items():
            child = self._children[pid]
            with contextlib.suppress(OSError):  # it died; collect() reports them lost
                child.conn.send_bytes(encode(Run(batch)))

    def handles(self) -> list[Any]:
        return [c.conn for c in self._children.values()]

    def collect(self) -> tuple[list[Done], list[Lost]]:
        done: list[Done] = []
        lost: list[Lost] = []
        for child in list(self._children.values()):
            try:
                while child.conn.poll():
                    message = decode_for_parent(child.conn.recv_bytes())
                    child.running.pop(message.id, None)
                    done.append(message)
                    if message.retire is not None:
                        log.info("replacing child %d: it %s", child.pid, message.retire)
                        child.retiring = True
            except (EOFError, OSError):
                pass  # it died: reaped below
            if child.retiring and not child.running and not child.stopping:
                child.stopping = True
                self._send_stop(child)
        lost.extend(self._enforce_time_limits())
        lost.extend(self._reap())
        return done, lost

    def _send_stop(self, child: Child) -> None:
        with contextlib.suppress(OSError):
            child.conn.send_bytes(encode(Stop()))

    def _enforce_time_limits(self) -> list[Lost]:
        now = time.monotonic()
        lost: list[Lost] = []
        for child in list(self._children.values()):
            overdue = [
                wid
                for wid, (start, limit) in child.running.items()
                if limit is not None and now - start >= limit
            ]
            if not overdue:
                continue
            log.error(
                "workflow(s) %s exceeded time_limit: killing child %d",
                ", ".join(overdue),
                child.pid,
            )
            os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
            lost.append(Lost(ids=list(child.running), crashed=False, timed_out=overdue))
            self._forget(child)
        return lost

    def _reap(self) -> list[Lost]:
        lost: list[Lost] = []
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            child = self._children.get(pid)
            if child is None:
                continue
            if child.running:
                log.error(
                    "child %d died (%s) running %d workflow(s); they go back to their queue",
                    pid,
                    _describe(status),
                    len(child.running),
                )
                lost.append(Lost(ids=list(child.running), crashed=True))
            self._forget(child)
        return lost

    def _forget(self, child: Child) -> None:
        child.conn.close()
        del self._children[child.pid]
        if not self._closing:
            self._spawn()

    def running(self) -> list[str]:
        return [wid for c in self._children.values() for wid in c.running]

    def next_deadline(self) -> float | None:
        deadlines = [
            start + limit
            for c in self._children.values()
            for start, limit in c.running.values()
            if limit is not None
        ]
        return min(deadlines) if deadlines else None

    def stop(self, timeout: float) -> list[str]:
        self._closing = True
        still = self.running()
        if timeout > 0:
            for child in self._children.values():
                if not child.stopping:
                    child.stopping = True
                    self._send_stop(child)
            deadline = time.monotonic() + timeout
            while self._children and time.monotonic() < deadline:
                self.collect()
                time.sleep(0.01)
        for child in list(self._children.values()):
            try:
                os.kill(child.pid, signal.SIGKILL)
                os.waitpid(child.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            child.conn.close()
        self._children.clear()
        return still


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.WEXITSTATUS(status)}"


__all__ = ["Lost", "Pool", "ProcessPool", "ThreadPool"]
