"""The app a real ``taskflow worker`` runs in the concurrent-steps kill test.

A worker loads it with ``-A tests.integration.concurrentapp:app`` and the environment
:func:`helpers.worker_env` sets (the database URL and the work folder of :mod:`workerapp`).
What ran is counted outside the database, in ``concurrent_runs.log`` in the work folder: one
line ``<event> <workflow id> <label> <pid>`` per step start and end, and one ``branch`` line
each time the workflow passes its ``select``. The gated step writes ``started-<id>-<label>``
(holding its pid) and waits for ``release-<id>-<label>``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import taskflow
from taskflow import Taskflow, Workflow, current

from .workerapp import (
    DATABASE_URL_ENV,
    HEARTBEAT_INTERVAL,
    HEARTBEAT_TIMEOUT,
    POLL_INTERVAL,
    WORKDIR_ENV,
)

APP = "tests.integration.concurrentapp:app"
APP_VERSION = "concurrentapp-1"
RUNS = "concurrent_runs.log"
GATE_LIMIT = 60.0
"""Seconds the gated step waits for its release file before failing on its own (a safety
net: the test releases it, or kills the process, long before)."""


def _workdir() -> Path:
    return Path(os.environ[WORKDIR_ENV])


def _log(event: str, label: str) -> None:
    # One write() of a short line on an O_APPEND file: lines from many processes never mix.
    line = f"{event} {current().workflow_id} {label} {os.getpid()}\n"
    fd = os.open(_workdir() / RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_runs(workdir: Path) -> list[tuple[str, str, str, int]]:
    """The ``(event, workflow id, label, pid)`` lines appended so far, in order."""
    path = workdir / RUNS
    if not path.exists():
        return []
    out: list[tuple[str, str, str, int]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        event, wid, label, pid = line.split()
        out.append((event, wid, label, int(pid)))
    return out


def started_pid(workdir: Path, workflow_id: str, label: str) -> int | None:
    """Pid of the process whose gated step ``label`` of ``workflow_id`` waits (None: none
    yet)."""
    marker = workdir / f"started-{workflow_id}-{label}"
    return int(marker.read_text(encoding="utf-8")) if marker.exists() else None


def release(workdir: Path, workflow_id: str, label: str) -> None:
    """Let the gated step ``label`` of ``workflow_id`` return."""
    (workdir / f"release-{workflow_id}-{label}").write_text("", encoding="utf-8")


@dataclass(frozen=True)
class ConcurrentApp:
    """The app and its workflow."""

    app: Taskflow
    fanout: Workflow[[], dict[str, Any]]

    def close(self) -> None:
        """Close the app."""
        self.app.close()


def create_app(database_url: str | None) -> ConcurrentApp:
    """A new app on ``database_url`` with the fan-out workflow."""
    app = Taskflow(
        "concurrentapp",
        database_url=database_url,
        app_version=APP_VERSION,
        worker_heartbeat_interval=HEARTBEAT_INTERVAL,
        worker_heartbeat_timeout=HEARTBEAT_TIMEOUT,
        worker_poll_interval=POLL_INTERVAL,
    )

    @app.step(name="ca.gated")
    def gated(label: str) -> str:
        _log("start", label)
        wid = current().workflow_id
        marker = _workdir() / f"started-{wid}-{label}"
        partial = marker.with_name(marker.name + ".partial")
        partial.write_text(str(os.getpid()), encoding="utf-8")
        partial.rename(marker)  # atomic: the test never reads a half-written marker
        gate = _workdir() / f"release-{wid}-{label}"
        give_up = time.monotonic() + GATE_LIMIT
        while not gate.exists():
            if time.monotonic() > give_up:
                raise TimeoutError(f"{gate} did not appear within {GATE_LIMIT}s")
            time.sleep(0.005)
        _log("end", label)
        return label

    @app.step(name="ca.quick")
    def quick(label: str) -> str:
        _log("start", label)
        _log("end", label)
        return label

    @app.workflow(name="ca.fanout")
    def fanout() -> dict[str, Any]:
        """Two gated steps and a quick one; select between the first gated and the quick
        one; gather all three."""
        a = taskflow.start_step(gated, "a")
        b = taskflow.start_step(gated, "b")
        c = taskflow.start_step(quick, "c")
        first = taskflow.select([a, c])
        _log("branch", first.result())
        return {"winner": first.result(), "values": taskflow.gather([a, b, c])}

    return ConcurrentApp(app, fanout)


concurrentapp = create_app(os.environ.get(DATABASE_URL_ENV))
app = concurrentapp.app
