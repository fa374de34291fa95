"""The app that the worker integration tests run through real ``taskflow worker`` processes.

A worker loads it with ``-A tests.integration.workerapp:app``; the tests build a producer app
with the same workflows on their own database with :func:`create_app`. The worker's settings
come from the environment:

- ``$TASKFLOW_WORKERAPP_DATABASE_URL``: the system database;
- ``$TASKFLOW_WORKERAPP_DIR``: a folder for everything counted outside the database:

  - ``side_effects.log``: one line ``<label> <workflow id> <step> <pid>`` per execution of a
    step (or of a workflow body), appended by the code itself;
  - ``events.jsonl``: one JSON object per line (signals received, what a bound task saw);
  - ``blocked-<workflow id>``: written (atomically, holding the pid) by the blocking step of
    :data:`SLOW`, which then waits until the test creates ``release-<workflow id>``;

- ``$TASKFLOW_WORKERAPP_VERSION`` (default :data:`APP_VERSION`),
  ``$TASKFLOW_WORKERAPP_THREADS`` (``worker_threads``, default 4) and
  ``$TASKFLOW_WORKERAPP_SHUTDOWN_TIMEOUT`` (``worker_shutdown_timeout``, default 30 s).

Heartbeats are fast (every :data:`HEARTBEAT_INTERVAL` s, dead after :data:`HEARTBEAT_TIMEOUT`
s) and idle workers poll every :data:`POLL_INTERVAL` s, so recoveries take seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskflow import SoftTimeLimitExceeded, Taskflow, Workflow, current, signals

DATABASE_URL_ENV = "TASKFLOW_WORKERAPP_DATABASE_URL"
WORKDIR_ENV = "TASKFLOW_WORKERAPP_DIR"
VERSION_ENV = "TASKFLOW_WORKERAPP_VERSION"
THREADS_ENV = "TASKFLOW_WORKERAPP_THREADS"
SHUTDOWN_TIMEOUT_ENV = "TASKFLOW_WORKERAPP_SHUTDOWN_TIMEOUT"

APP_VERSION = "workerapp-1"
HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 3.0
POLL_INTERVAL = 0.1
SIDE_EFFECTS = "side_effects.log"
EVENTS = "events.jsonl"
BLOCK_LIMIT = 60.0
"""Seconds the blocking step waits for its release file before failing on its own (a safety
net: the tests release it, or kill the process, long before)."""
SOFT_TIME_LIMIT = 0.3
TIME_LIMIT = 0.5
RETRY_COUNTDOWN = 0.3
FLAKY_FAILURES = 2
""":data:`FLAKY` fails this many times, then succeeds."""

NOOP = "wa.noop"
ONE_STEP = "wa.one_step"
THREE_STEPS = "wa.three_steps"
SLOW = "wa.slow"
FLAKY = "wa.flaky"
BOUND = "wa.bound"
SOFT = "wa.soft"
HARD = "wa.hard"
QUEUE_A = "a"
QUEUE_B = "b"
PARENT = "wa.parent"
""":data:`SLOW`'s steps around three children: a :data:`SLOW` one, one delayed by an hour and
one on :data:`QUEUE_B`; its ``wait`` step blocks on ``release-<parent id>``."""
FIXABLE = "wa.fixable"
"""Three steps; the second raises :class:`FixableError` while ``broken-<workflow id>``
exists."""
FRAGILE = "wa.fragile"
""":data:`SLOW` with ``max_recovery_attempts=0``: parked after its first crash."""
BODY_BLOCKS = "wa.body_blocks"
"""No step: its body blocks until ``release-<id>`` exists, then returns ``"done"``, so only
the worker's final write records its outcome."""


class FlakyError(Exception):
    """What :data:`FLAKY` raises on its first tries (listed in its ``autoretry_for``)."""


class FixableError(Exception):
    """What the second step of :data:`FIXABLE` raises while its ``broken-<id>`` file exists."""


# -- outside the database ----------------------------------------------------------------------
def workdir() -> Path:
    """The folder holding side effects, events and markers."""
    return Path(os.environ[WORKDIR_ENV])


def _append(name: str, line: str) -> None:
    # One write() of a short line on an O_APPEND file: lines from many processes never mix.
    fd = os.open(workdir() / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def record(label: str, step: str) -> None:
    """Append ``<label> <workflow id> <step> <pid>`` to the side-effects log."""
    _append(SIDE_EFFECTS, f"{label} {current().workflow_id} {step} {os.getpid()}\n")


def records(label: str, workflow_id: str, step: str) -> int:
    """How many times ``step`` of ``workflow_id`` ran so far (read from the log)."""
    path = workdir() / SIDE_EFFECTS
    if not path.exists():
        return 0
    wanted = [label, workflow_id, step]
    lines = path.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.split()[:3] == wanted)


def event(kind: str, **fields: Any) -> None:
    """Append one JSON event (with this pid and the wall time) to the events log."""
    data = {"event": kind, "pid": os.getpid(), "time": time.time(), **fields}
    _append(EVENTS, json.dumps(data) + "\n")


def _write_marker(path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(str(os.getpid()), encoding="utf-8")
    partial.rename(path)  # atomic: the test never reads a half-written marker


def _block_until_released() -> None:
    """Write ``blocked-<id>`` and wait for ``release-<id>`` (as :data:`SLOW`'s ``wait`` step
    does), outside any step."""
    wid = current().workflow_id
    _write_marker(workdir() / f"blocked-{wid}")
    release = workdir() / f"release-{wid}"
    give_up = time.monotonic() + BLOCK_LIMIT
    while not release.exists():
        if time.monotonic() > give_up:
            raise TimeoutError(f"{release} did not appear within {BLOCK_LIMIT}s")
        time.sleep(0.005)


def _spin(seconds: float) -> None:
    """Run Python code for ``seconds`` (so an exception raised in this thread lands)."""
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        time.sleep(0.005)


# -- the app ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerApp:
    """An app with every workflow of this module registered on it."""

    app: Taskflow
    noop: Workflow[[], None]
    one_step: Workflow[[str], str]
    three_steps: Workflow[[str], list[str]]
    slow: Workflow[[str], list[str]]
    flaky: Workflow[[str], int]
    bound: Workflow[[int], dict[str, Any]]
    soft: Workflow[[str], str]
    hard: Workflow[[str], str]


def create_app(database_url: str | None, app_version: str = APP_VERSION) -> WorkerApp:
    """A new app on ``database_url`` with this module's workflows and queues."""
    app = Taskflow(
        "workerapp",
        database_url=database_url,
        app_version=app_version,
        worker_heartbeat_interval=HEARTBEAT_INTERVAL,
        worker_heartbeat_timeout=HEARTBEAT_TIMEOUT,
        worker_poll_interval=POLL_INTERVAL,
        worker_threads=int(os.environ.get(THREADS_ENV, "4")),
        worker_shutdown_timeout=float(os.environ.get(SHUTDOWN_TIMEOUT_ENV, "30")),
    )
    app.queue(QUEUE_A)
    app.queue(QUEUE_B)

    @app.workflow(name=NOOP)
    def noop() -> None:
        """Nothing at all."""

    @app.step(name="wa.touch")
    def touch(label: str) -> str:
        record(label, "touch")
        return label

    @app.workflow(name=ONE_STEP)
    def one_step(label: str) -> str:
        """One step, which leaves one side effect."""
        return touch(label)

    @app.step(name="wa.s1")
    def s1(label: str) -> str:
        record(label, "s1")
        return "s1"

    @app.step(name="wa.s2")
    def s2(label: str) -> str:
        record(label, "s2")
        return "s2"

    @app.step(name="wa.s3")
    def s3(label: str) -> str:
        record(label, "s3")
        return "s3"

    @app.workflow(name=THREE_STEPS)
    def three_steps(label: str) -> list[str]:
        """Three steps, each leaving a side effect."""
        return [s1(label), s2(label), s3(label)]

    @app.step(name="wa.slow.first")
    def slow_first(label: str) -> str:
        record(label, "first")
        return "first"

    @app.step(name="wa.slow.wait")
    def slow_wait(label: str) -> str:
        record(label, "wait")
        wid = current().workflow_id
        _write_marker(workdir() / f"blocked-{wid}")
        release = workdir() / f"release-{wid}"
        give_up = time.monotonic() + BLOCK_LIMIT
        while not release.exists():
            if time.monotonic() > give_up:
                raise TimeoutError(f"{release} did not appear within {BLOCK_LIMIT}s")
            time.sleep(0.005)
        return "wait"

    @app.step(name="wa.slow.last")
    def slow_last(label: str) -> str:
        record(label, "last")
        return "last"

    @app.workflow(name=SLOW)
    def slow(label: str) -> list[str]:
        """A step, a step that blocks until ``release-<id>`` exists, a step."""
        return [slow_first(label), slow_wait(label), slow_last(label)]

    @app.step(name="wa.flaky.before")
    def flaky_before(label: str) -> str:
        record(label, "before")
        return "before"

    @app.step(name="wa.flaky.after")
    def flaky_after(label: str) -> str:
        record(label, "after")
        return "after"

    @app.task(
        name=FLAKY,
        autoretry_for=(FlakyError,),
        max_retries=3,
        retry_backoff=False,
        retry_jitter=False,
        default_retry_delay=0.1,
    )
    def flaky(label: str) -> int:
        """A step, then :class:`FlakyError` on the first two tries; then a step."""
        flaky_before(label)
        record(label, "try")  # the body, not a step: once per try
        tries = records(label, current().workflow_id, "try")
        if tries <= FLAKY_FAILURES:
            raise FlakyError(f"try {tries} of {current().workflow_id} fails")
        flaky_after(label)
        return tries

    @app.task(bind=True, name=BOUND, max_retries=3, default_retry_delay=30.0)
    def bound(self: Workflow[..., Any], n: int) -> dict[str, Any]:
        """Record what ``self.request`` holds; retry twice with a countdown."""
        req = self.request
        seen = {
            "id": req.id,
            "name": req.name,
            "retries": req.retries,
            "args": list(req.args),
            "called_directly": req.called_directly,
        }
        event("bound", **seen)
        if req.retries < 2:
            raise self.retry(countdown=RETRY_COUNTDOWN)
        return {**seen, "n": n}

    @app.task(name=SOFT, soft_time_limit=SOFT_TIME_LIMIT, time_limit=30.0)
    def soft(label: str) -> str:
        """Run past the soft limit, catch it, return normally."""
        record(label, "start")
        try:
            _spin(20.0)
        except SoftTimeLimitExceeded:
            record(label, "caught")
            return "caught"
        return "not interrupted"

    @app.task(name=HARD, time_limit=TIME_LIMIT)
    def hard(label: str) -> str:
        """Run far past the hard limit (the worker must end it)."""
        record(label, "start")
        _spin(20.0)
        record(label, "overran")
        return "overran"

    # Registered by name only (reach them with ``app.get_workflow``): the tests of cancel,
    # resume and set_delay use them.
    @app.workflow(name=PARENT)
    def parent(label: str) -> list[str]:
        """A step, three children (running, delayed, on a queue nobody serves), a step that
        blocks, a step; returns the children's ids."""
        slow_first(label)
        running = slow.apply_async(args=(f"{label}-child",))
        later = one_step.apply_async(args=(f"{label}-later",), countdown=3600)
        elsewhere = one_step.apply_async(args=(f"{label}-elsewhere",), queue=QUEUE_B)
        slow_wait(label)
        slow_last(label)
        return [running.id, later.id, elsewhere.id]

    @app.step(name="wa.fixable.check")
    def fixable_check(label: str) -> str:
        record(label, "check")
        if (workdir() / f"broken-{current().workflow_id}").exists():
            raise FixableError(f"{current().workflow_id} is broken")
        return "check"

    @app.workflow(name=FIXABLE)
    def fixable(label: str) -> list[str]:
        """s1, a check that fails while ``broken-<id>`` exists, s3."""
        return [s1(label), fixable_check(label), s3(label)]

    @app.workflow(name=FRAGILE, max_recovery_attempts=0)
    def fragile(label: str) -> list[str]:
        """:data:`SLOW`'s steps, parked as soon as one crash is recovered."""
        return [slow_first(label), slow_wait(label), slow_last(label)]

    @app.workflow(name=BODY_BLOCKS)
    def body_blocks(label: str) -> str:
        """Block in the body, then return: no checkpoint can notice a cancel."""
        record(label, "body")
        _block_until_released()
        return "done"

    return WorkerApp(app, noop, one_step, three_steps, slow, flaky, bound, soft, hard)


def _connect_signals() -> None:
    @signals.worker_process_init.connect
    def on_process_init(**_: Any) -> None:
        event("worker_process_init", ppid=os.getppid())

    @signals.task_prerun.connect
    def on_prerun(task_id: str, **_: Any) -> None:
        event("task_prerun", id=task_id)

    @signals.task_postrun.connect
    def on_postrun(task_id: str, state: str, **_: Any) -> None:
        event("task_postrun", id=task_id, state=state)


if os.environ.get(WORKDIR_ENV):
    # Only in the worker's processes: the test process keeps the signals clean.
    _connect_signals()

workerapp = create_app(os.environ.get(DATABASE_URL_ENV), os.environ.get(VERSION_ENV) or APP_VERSION)
app = workerapp.app


def main(argv: list[str]) -> int:
    """``python -m tests.integration.workerapp slow <workflow id> <label>``: run :data:`SLOW`
    directly in this process (not through a worker) and print its outcome as JSON."""
    if len(argv) != 3 or argv[0] != "slow":
        print("usage: workerapp slow <workflow id> <label>", file=sys.stderr)
        return 2
    _, workflow_id, label = argv
    handle = workerapp.slow.apply(args=(label,), workflow_id=workflow_id)
    print(json.dumps({"id": handle.id, "status": handle.status.value}))
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
