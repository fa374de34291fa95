"""The app that the durable-primitive tests (sleep, messages, events, child results, parking)
run through real ``taskflow worker`` processes.

A worker loads it with ``-A tests.integration.durableapp:app``. It reads the environment of
:func:`helpers.worker_env` (database URL, work folder, threads), plus:

- ``$DURABLEAPP_PARK_AFTER``: ``workflow_park_after`` (default 1 second);
- ``$DURABLEAPP_DIE_AFTER_CHILD_START``: when set, the first process that has started the
  children of :func:`family` kills itself with SIGKILL right after the enqueue committed and
  before the parent recorded it (once: a marker file in the work folder says it happened).

Workflow bodies append lines to files in the work folder (one ``write()`` each, so lines
from many processes never mix): what ran, where and when, read by the tests.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import taskflow
from taskflow import Taskflow, current

DATABASE_URL_ENV = "TASKFLOW_WORKERAPP_DATABASE_URL"
WORKDIR_ENV = "TASKFLOW_WORKERAPP_DIR"
THREADS_ENV = "TASKFLOW_WORKERAPP_THREADS"
PARK_AFTER_ENV = "DURABLEAPP_PARK_AFTER"
DIE_ENV = "DURABLEAPP_DIE_AFTER_CHILD_START"

APP_VERSION = "durableapp-1"
NAPS = "naps"
NAPS_CONCURRENCY = 5
LOG = "durable.log"
DIED = "died-after-child-start"


def workdir() -> Path:
    """The folder holding the records."""
    return Path(os.environ[WORKDIR_ENV])


def record(*fields: object) -> None:
    """Append one line of fields (and the wall time, pid) to :data:`LOG`."""
    line = " ".join(str(f) for f in fields) + f" {time.time():.6f} {os.getpid()}\n"
    fd = os.open(workdir() / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def create_app(database_url: str | None) -> Taskflow:
    """A new app on ``database_url`` with this module's queue and workflows; they are
    reachable as ``app.workflows[name]``."""
    app = Taskflow(
        "durableapp",
        database_url=database_url,
        app_version=APP_VERSION,
        worker_heartbeat_interval=0.5,
        worker_heartbeat_timeout=3.0,
        worker_poll_interval=0.1,
        worker_threads=int(os.environ.get(THREADS_ENV, "4")),
        workflow_park_after=float(os.environ.get(PARK_AFTER_ENV, "1.0")),
    )
    app.queue(NAPS, concurrency=NAPS_CONCURRENCY)

    @app.step()
    def mark(label: str, hold_ms: int) -> float:
        """Record the start and end of the step body (holding it ``hold_ms``)."""
        wid = current().workflow_id
        record("step-start", label, wid)
        if hold_ms:
            time.sleep(hold_ms / 1000)
        record("step-end", label, wid)
        return time.time()

    @app.workflow(name="durable.nap", queue=NAPS)
    def nap(label: str, seconds: float, hold_ms: int = 0) -> float:
        """Sleep durably, then run one step; returns the time the step ran."""
        record("nap-start", label, current().workflow_id)
        taskflow.sleep(seconds)
        return mark(label, hold_ms)

    @app.workflow(name="durable.inbox")
    def inbox(count: int, timeout: float) -> list[Any]:
        """Receive ``count`` messages (None for each wait that timed out)."""
        taskflow.set_event("ready", True)
        got = []
        for _ in range(count):
            got.append(taskflow.recv(timeout=timeout))
            taskflow.set_event("received", len(got))
        return got

    @app.workflow(name="durable.publisher")
    def publisher(values: list[int], pause: float) -> int:
        """Publish each value of ``values`` as event "value", sleeping ``pause`` in between."""
        for value in values:
            taskflow.set_event("value", value)
            taskflow.sleep(pause)
        return len(values)

    @app.workflow(name="durable.watcher")
    def watcher(target: str, timeout: float) -> Any:
        """Wait for ``target``'s event "value" and return it."""
        return taskflow.get_event(target, "value", timeout=timeout)

    @app.workflow(name="durable.child")
    def child(n: int, seconds: float) -> int:
        """Sleep, then return ``n * n``."""
        record("child", current().workflow_id)
        taskflow.sleep(seconds)
        return n * n

    def _die_after_next_enqueue() -> None:
        """Make this process kill itself right after its next enqueue commits: the first
        child exists, the parent's step recording it does not."""
        broker = app.broker
        enqueue = broker.enqueue

        def enqueue_then_die(news: Any, now: int) -> Any:
            results = enqueue(news, now)
            (workdir() / DIED).write_text(current().workflow_id)
            os.kill(os.getpid(), signal.SIGKILL)
            return results

        broker.enqueue = enqueue_then_die  # type: ignore[method-assign]

    @app.workflow(name="durable.family")
    def family(count: int, seconds: float) -> int:
        """Start ``count`` children, then wait for each one's result; returns their sum."""
        if os.environ.get(DIE_ENV) and not (workdir() / DIED).exists():
            _die_after_next_enqueue()
        handles = [child.delay(n, seconds) for n in range(count)]
        record("family-children", current().workflow_id, *[h.id for h in handles])
        return sum(h.get() for h in handles)

    return app


app = create_app(os.environ.get(DATABASE_URL_ENV))
