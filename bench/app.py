"""The app the worker suites run: ``taskflow worker -A bench.app:app``.

The worker is a separate process that imports this module, so the database comes from the
environment: ``$TASKFLOW_BENCH_DATABASE_URL`` (else taskflow's own default:
``$TASKFLOW_DATABASE_URL``, else ``sqlite:///taskflow.sqlite3``) and
``$TASKFLOW_BENCH_SQLITE_SYNCHRONOUS``. The benchmark process builds its own copy of the same
app on each scratch database with :func:`create_app`.

Workflows: ``bench.noop`` (no steps) and ``bench.three_steps`` (three no-op steps); for the
``durable`` suite (bench/durable.py), ``bench.ponger`` and ``bench.pinger``, which exchange
messages with ``taskflow.send``/``recv``, and ``bench.sleeper``, which sleeps durably.
``$TASKFLOW_BENCH_PARK_AFTER`` sets the worker's ``workflow_park_after`` (that suite runs workers
that never park and workers that park every wait). For the ``beat`` suite (bench/beat.py),
``bench.scheduled``, a no-op taking a schedule's ``(scheduled_at, context)``; no schedule is
declared here (that suite creates its schedule at run time on its own scratch database), so
no other suite's worker ever fires it.

Queues (the ``queues`` suite, bench/queues.py): besides ``default``, the app declares one queue
per flow-control setting it measures, all with the same no-op workflow enqueued onto them:
``bench.unlimited`` (no limit, the baseline), ``bench.concurrency`` (``concurrency=50``),
``bench.rate`` (``rate_limit="2000/s"``), ``bench.rate_unbound`` (``rate_limit="20000/s"``)
and ``bench.partitioned`` (``concurrency=10`` per partition key). The worker records them in the
database when it starts. A worker without ``-Q`` serves every queue the app declares, so the
benchmark always gives ``-Q`` (``default`` for the other suites, see bench/workers.py).

Profiling: with ``$TASKFLOW_BENCH_PROFILE`` naming a folder, a worker running this app profiles
itself with cProfile (the parent's main loop from ``worker_ready`` on, and every thread of
every prefork child) and writes one ``.prof`` file per thread into the folder as it stops.
``python3 -m bench.profile <folder>`` prints them summed. The benchmark passes its environment
on to the workers it starts, so ``TASKFLOW_BENCH_PROFILE=/tmp/prof python3 -m bench --suite
throughput`` profiles every worker of the suite.
"""

from __future__ import annotations

import cProfile
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import taskflow
from taskflow import Taskflow, signals
from taskflow.task import Workflow

DATABASE_URL_ENV = "TASKFLOW_BENCH_DATABASE_URL"
"""The database the worker's copy of the app uses."""

SQLITE_SYNCHRONOUS_ENV = "TASKFLOW_BENCH_SQLITE_SYNCHRONOUS"
"""SQLite ``PRAGMA synchronous`` of the worker's copy (default: taskflow's)."""

PARK_AFTER_ENV = "TASKFLOW_BENCH_PARK_AFTER"
"""``workflow_park_after`` of the worker's copy, in seconds (default: taskflow's)."""

PROFILE_ENV = "TASKFLOW_BENCH_PROFILE"
"""A folder: profile the worker into it (see the module's docstring)."""

APP_SPEC = "bench.app:app"
"""What ``taskflow worker -A`` is given."""

APP_VERSION = "bench"
"""Fixed, so the producer's and the worker's copies of the app agree."""

NOOP = "bench.noop"
THREE_STEPS = "bench.three_steps"
PINGER = "bench.pinger"
PONGER = "bench.ponger"
SLEEPER = "bench.sleeper"
SCHEDULED = "bench.scheduled"
PING_TOPIC = "ping"
PONG_TOPIC = "pong"

UNLIMITED_QUEUE = "bench.unlimited"
"""No limit: the baseline the limited queues are compared with."""

CONCURRENCY_QUEUE = "bench.concurrency"
"""At most 50 running at once over every worker: more than one ``-c 2`` worker's 16 slots, so
the limit is checked on every claim but never binds."""

RATE_QUEUE = "bench.rate"
"""At most 2,000 starts per second: a no-op worker runs faster, so this limit binds."""

UNBOUND_RATE_QUEUE = "bench.rate_unbound"
"""At most 20,000 starts per second: above what one worker reaches, so it never binds."""

PARTITIONED_QUEUE = "bench.partitioned"
"""At most 10 running at once per partition key: with the workflows spread over 1,000 keys in
turn, a 16-slot worker never has 10 of one key running, so the limit never binds."""

QUEUE_LIMITS: dict[str, dict[str, Any]] = {
    UNLIMITED_QUEUE: {},
    CONCURRENCY_QUEUE: {"concurrency": 50},
    RATE_QUEUE: {"rate_limit": "2000/s"},
    UNBOUND_RATE_QUEUE: {"rate_limit": "20000/s"},
    PARTITIONED_QUEUE: {"concurrency": 10, "partitioned": True},
}
"""``app.queue(name, **limits)`` of every benchmark queue (``default`` stays unlimited)."""


@dataclass(frozen=True)
class BenchApp:
    """The app and its workflows."""

    app: Taskflow
    noop: Workflow[[], None]
    """Start, run nothing, finish."""
    three_steps: Workflow[[], None]
    """Three checkpointed no-op steps."""
    ponger: Workflow[[int, float], None]
    """``(rounds, timeout)``: ``rounds`` times, receive a ping and send it back, stamped."""
    pinger: Workflow[[str, int, float], list[list[float]]]
    """``(ponger_id, rounds, timeout)``: ``rounds`` pings to the ponger, each answered before
    the next; returns the wall-clock stamps of every exchange (see :func:`create_app`)."""
    sleeper: Workflow[[float], None]
    """``(seconds)``: one durable ``taskflow.sleep``."""
    scheduled: Workflow[[datetime, object], None]
    """``(scheduled_at, context)``: what a schedule fires; runs nothing."""

    def workflow(self, name: str) -> Workflow[[], None]:
        """One of the two workflows by name."""
        return {NOOP: self.noop, THREE_STEPS: self.three_steps}[name]


def create_app(
    database_url: str | None,
    sqlite_synchronous: str | None = None,
    park_after: float | None = None,
) -> BenchApp:
    """The benchmark app on ``database_url`` (None: taskflow's default). Nothing connects until
    first use.

    A pinger's exchange is ``[sent, received, replied, back]``, wall-clock seconds
    (``time.time()``: the two workflows may run in different processes): the pinger stamps
    ``sent`` into the ping just before ``send``, the ponger stamps ``received`` as ``recv``
    returns it and ``replied`` just before sending it back, and the pinger takes ``back`` in a
    step as its ``recv`` returns. Every stamp travels in a recorded message or step, so a
    workflow that parked and replays reports the times of the first execution, never of the
    replay."""
    settings: dict[str, Any] = (
        {} if sqlite_synchronous is None else {"sqlite_synchronous": sqlite_synchronous}
    )
    if park_after is not None:
        settings["workflow_park_after"] = park_after
    app = Taskflow("bench", database_url=database_url, app_version=APP_VERSION, **settings)
    for name, limits in QUEUE_LIMITS.items():
        app.queue(name, **limits)

    @app.step(name="bench.step")
    def step() -> None:
        return None

    @app.step(name="bench.clock")
    def clock() -> float:
        return time.time()

    @app.workflow(name=NOOP)
    def noop() -> None:
        return None

    @app.workflow(name=THREE_STEPS)
    def three_steps() -> None:
        step()
        step()
        step()

    @app.workflow(name=PONGER)
    def ponger(rounds: int, timeout: float) -> None:
        for index in range(rounds):
            ping = taskflow.recv(PING_TOPIC, timeout=timeout)
            if ping is None:
                raise TimeoutError(f"ponger: no ping {index} within {timeout} s")
            ping["received"] = time.time()
            ping["replied"] = time.time()
            taskflow.send(ping["from"], ping, topic=PONG_TOPIC)

    @app.workflow(name=PINGER)
    def pinger(ponger_id: str, rounds: int, timeout: float) -> list[list[float]]:
        me = taskflow.current().workflow_id
        exchanges: list[list[float]] = []
        for index in range(rounds):
            taskflow.send(ponger_id, {"from": me, "sent": time.time()}, topic=PING_TOPIC)
            pong = taskflow.recv(PONG_TOPIC, timeout=timeout)
            back = clock()
            if pong is None:
                raise TimeoutError(f"pinger: no answer to ping {index} within {timeout} s")
            exchanges.append([pong["sent"], pong["received"], pong["replied"], back])
        return exchanges

    @app.workflow(name=SLEEPER)
    def sleeper(seconds: float) -> None:
        taskflow.sleep(seconds)

    @app.workflow(name=SCHEDULED)
    def scheduled(scheduled_at: datetime, context: object) -> None:
        return None

    return BenchApp(app, noop, three_steps, ponger, pinger, sleeper, scheduled)


# -- profiling (only with $TASKFLOW_BENCH_PROFILE) ----------------------------------------------


class _Profiles:
    """One cProfile profile per thread of this process, written out on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._profiles: list[tuple[str, cProfile.Profile]] = []

    def start_here(
        self, _frame: FrameType | None = None, _event: str = "", _arg: object = None
    ) -> None:
        """Profile the calling thread from now on. Also usable as a ``threading.setprofile``
        hook: the first event in a new thread replaces the hook with a profile of its own."""
        sys.setprofile(None)
        profile = cProfile.Profile()
        with self._lock:
            self._profiles.append((threading.current_thread().name, profile))
        profile.enable()

    def forget(self) -> None:
        """Drop profiles a fork copied from the parent: they are not this process's."""
        with self._lock:
            self._profiles.clear()

    def dump(self, role: str) -> None:
        """Write every profile taken so far (its thread should have ended, or be this one)."""
        with self._lock:
            taken, self._profiles = self._profiles, []
        self.folder.mkdir(parents=True, exist_ok=True)
        for index, (thread, profile) in enumerate(taken):
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", thread)
            profile.dump_stats(self.folder / f"{role}-{os.getpid()}-{index}-{safe}.prof")


def install_profiling(folder: Path) -> None:
    """Profile the worker this module is loaded into (see the module's docstring)."""
    profiles = _Profiles(folder)

    def child_started(sender: object = None, **_named: object) -> None:
        profiles.forget()
        threading.setprofile(profiles.start_here)

    def child_stopping(sender: object = None, **_named: object) -> None:
        threading.setprofile(None)
        profiles.dump("child")

    def worker_ready(sender: object = None, **_named: object) -> None:
        profiles.start_here()  # the supervisor's main loop: claims, finishes, collecting

    def worker_stopping(sender: object = None, **_named: object) -> None:
        profiles.dump("worker")

    signals.worker_process_init.connect(child_started, dispatch_uid="bench.profile.init")
    signals.worker_process_shutdown.connect(child_stopping, dispatch_uid="bench.profile.exit")
    signals.worker_ready.connect(worker_ready, dispatch_uid="bench.profile.ready")
    signals.worker_shutdown.connect(worker_stopping, dispatch_uid="bench.profile.shutdown")


_bench = create_app(
    os.environ.get(DATABASE_URL_ENV) or None,
    os.environ.get(SQLITE_SYNCHRONOUS_ENV) or None,
    float(os.environ[PARK_AFTER_ENV]) if os.environ.get(PARK_AFTER_ENV) else None,
)
app = _bench.app
noop = _bench.noop
three_steps = _bench.three_steps
ponger = _bench.ponger
pinger = _bench.pinger
sleeper = _bench.sleeper
scheduled = _bench.scheduled

if os.environ.get(PROFILE_ENV):
    install_profiling(Path(os.environ[PROFILE_ENV]))
