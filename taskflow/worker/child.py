"""The main loop of one prefork child: receive claimed workflows, run them in threads,
report each end to the parent."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import threading
from multiprocessing.connection import Connection

from taskflow import signals
from taskflow.app import Taskflow
from taskflow.execution import WorkerMode
from taskflow.worker.executor import Executor
from taskflow.worker.ipc import Done, Run, decode_for_child, encode
from taskflow.worker.options import WorkerOptions

log = logging.getLogger("taskflow.worker")

_PR_SET_PDEATHSIG = 1

_INHERITED: list[object] = []
"""Database objects copied from the parent by fork. Kept referenced until ``os._exit`` so
they are never finalized here: closing an inherited SQLite connection would checkpoint and
remove a WAL the parent still uses (corrupting the file), and closing an inherited Postgres
connection would end the parent's session."""


def _die_with_parent() -> None:
    # A child must never outlive its worker: another worker recovers the worker's workflows
    # once its heartbeat stops, and an orphaned child still running them would run steps
    # twice. Linux only; elsewhere the closed pipe ends the child at its next read.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def rss_kib() -> int:
    """Resident memory of this process in KiB (0 if unknown)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def child_main(app: Taskflow, conn: Connection, options: WorkerOptions, worker_id: str) -> int:
    """Run until the parent says stop or goes away; return the exit code."""
    _die_with_parent()
    # Ctrl-C reaches the whole process group; only the parent decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    # Locks copied from the parent may be held by a parent thread that does not exist here.
    app._lock = threading.RLock()
    _INHERITED.append(app._broker)
    app._broker = None
    app._presence = None
    app._shared_executor = True
    app._worker_executor_id = worker_id
    signals.worker_process_init.send(sender=None)

    send_lock = threading.Lock()
    done_count = 0
    retired = False

    def report(done: Done) -> None:
        nonlocal done_count, retired
        with send_lock:
            done_count += 1
            if not retired:
                reason = None
                if options.max_tasks_per_child and done_count >= options.max_tasks_per_child:
                    reason = f"ran {done_count} workflows (max_tasks_per_child)"
                elif options.max_memory_per_child and rss_kib() > options.max_memory_per_child:
                    reason = f"uses {rss_kib()} KiB (max_memory_per_child)"
                if reason is not None:
                    retired = True
                    done.retire = reason
            conn.send_bytes(encode(done))

    mode = WorkerMode(executor_id=worker_id, defer_finish=True)
    executor = Executor(app, mode, options.threads, report, name=f"taskflow-child-{os.getpid()}")
    executor.start()
    code = 1
    try:
        while True:
            try:
                message = decode_for_child(conn.recv_bytes())
            except (EOFError, OSError):
                return code  # the parent is gone
            if isinstance(message, Run):
                for row in message.rows:
                    executor.submit(row)
            else:
                executor.stop()
                code = 0
                return code
    finally:
        signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=code)
        app.close()


__all__ = ["child_main", "rss_kib"]
