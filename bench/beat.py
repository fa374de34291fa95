"""Suite ``beat``: how late a schedule's fires land on an idle system, and how long a standby
beat takes to replace a leader killed with SIGKILL.

**Fire lateness.** One ``taskflow worker -A bench.app:app -c 2 -Q default -B`` (a worker that
also runs a beat) on a scratch database. Once its beat holds the lease, the benchmark creates
a per-second schedule (``* * * * * *``, firing ``bench.scheduled``, see bench/app.py) with
``app.schedules.create``. The first fires are untimed: a schedule created at run time is first
seen at the beat's next round, up to ``beat_max_interval`` (1 s) later. Then every second of a
window of 30 s (``--quick``: 5 s) is measured: a fire's scheduled time is in its workflow id
(``schedule:<name>:<UTC second>``); **enqueue lateness** = the row's ``created_at`` (when the
beat wrote it) minus that time, **start lateness** = its ``started_at`` (when the worker
started it) minus that time, whole milliseconds of the same machine's clock. After the window
the schedule is deleted and the benchmark waits until every fire of the window has started.
Every second of the window must have exactly one workflow: a second without one is a gap,
two for one second a duplicate.

**Failover.** Two ``taskflow beat -A bench.app:app -n <name>`` processes (no worker: the fires
stay enqueued), each in a session of its own. Once one holds the lease the same schedule is
created; after a few fires and a random wait of up to ``beat_max_interval`` (the leader renews
its lease at every round, so killing it right after a fire would always leave a whole lease to
run), the benchmark reads who leads (``broker.beat_lease()``) and SIGKILLs the leader's process
group, then reads the lease every 10 ms until the other beat holds it: **kill to takeover**.
**Lease left** is the dead leader's ``lease_until`` minus the kill time, and **lease ran out
to takeover** the takeover minus that ``lease_until`` (how long the standby took to notice: it
checks once per ``beat_max_interval``). **Kill to next fire** = the ``created_at`` of the first
workflow written after the kill, minus the kill time: the new leader's first round fires the
seconds missed while nobody led (they are within ``beat_misfire_grace_time``, 10 s), all in
one transaction (**caught up**). After a few on-time fires by the new leader it is stopped
with SIGTERM, and every second from the round's first fire to its last must have exactly one
workflow.

Each dialect runs the lateness window once and ``--rounds`` failover rounds (default 5;
``--quick``: one round, one fire before the kill and one after the takeover), all on one
scratch database, the tables emptied between rounds.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.app import APP_SPEC, SCHEDULED, BenchApp
from bench.common import DIALECT_NAMES, REPO_ROOT, BenchError, Options, progress
from bench.databases import ScratchDatabase, scratch_database
from bench.report import QUICK_NOTE, SuiteReport, Table
from bench.stats import Summary
from bench.workers import (
    WorkflowRows,
    producer_app,
    worker_arguments,
    worker_command_shown,
    worker_environment,
)
from taskflow.models import BeatLease

SCHEDULE = "bench.every-second"
"""The schedule's name; its fires have ids ``schedule:bench.every-second:<UTC second>``."""

EVERY_SECOND = "* * * * * *"

FIRE_PREFIX = f"schedule:{SCHEDULE}:"

WINDOW_SECONDS = 30
"""Scheduled seconds measured on the idle worker."""

QUICK_WINDOW_SECONDS = 5

UNTIMED_SECONDS = 2
"""Fires after the schedule is created and before the window: the first may wait for the
beat's next round, since the beat only learns of a new schedule when it looks."""

FIRES_BEFORE_KILL = 3
"""Fires by the first leader before it is killed."""

FIRES_AFTER_TAKEOVER = 3
"""On-time seconds fired by the new leader before the round ends."""

QUICK_FIRES = 1
"""Both of the above with ``--quick``."""

TARGET_LATENESS_MS = 1000
"""The issue's target: fires land within one second of their scheduled time (idle system)."""

LEASE_POLL_SECONDS = 0.010
"""How often the lease (and, after the kill, the fires) are read."""

SETTLE_SECONDS = 0.5
"""Idle time after the worker's ``ready.`` and its beat's lease, before the schedule."""

STARTUP_TIMEOUT = 60.0
"""Seconds a process may take to log that it runs, or a beat to take the lease."""

FIRE_TIMEOUT = 30.0
"""Seconds the benchmark waits for a fire (or for the fires it expects) before failing."""

STOP_TIMEOUT = 60.0
"""Seconds a process may take to exit after SIGTERM."""

_CLI = "import sys; from taskflow.cli import main; sys.argv[0] = 'taskflow'; main()"
"""The console script's code, run by this interpreter (as bench/workers.py runs the worker)."""


def window_seconds(options: Options) -> int:
    """Scheduled seconds measured on the idle worker in this run."""
    return QUICK_WINDOW_SECONDS if options.quick else WINDOW_SECONDS


def failover_rounds(options: Options) -> int:
    """Failover rounds of this run: ``--rounds`` (default 5), one with ``--quick``."""
    return 1 if options.quick else options.sizes.rounds


def fires_before_kill(options: Options) -> int:
    """Fires by the first leader before it is killed, in this run."""
    return QUICK_FIRES if options.quick else FIRES_BEFORE_KILL


def fires_after_takeover(options: Options) -> int:
    """On-time seconds fired by the new leader before the round ends, in this run."""
    return QUICK_FIRES if options.quick else FIRES_AFTER_TAKEOVER


def beat_command_shown(name: str = "<name>") -> str:
    """A beat's command line as the report shows it."""
    return f"taskflow beat -A {APP_SPEC} -n {name}"


# -- processes ------------------------------------------------------------------------------


class CliProcess:
    """One ``taskflow`` command (``worker -B`` or ``beat``) as a subprocess in a session of
    its own (so its whole process group can be killed), its log read line by line."""

    def __init__(
        self, db: ScratchDatabase, options: Options, label: str, args: Sequence[str]
    ) -> None:
        self.label = label
        self.dialect = db.dialect
        self.problems: list[str] = []
        """Log lines at ERROR or CRITICAL, and traceback headers (the first 20)."""
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CLI, *args],
            cwd=REPO_ROOT,
            env=worker_environment(db, options),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"bench-{label}-log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        for line in stream:
            text = line.rstrip()
            with self._lock:
                self._lines.append(text)
            if len(self.problems) < 20 and (
                " ERROR]" in text or " CRITICAL]" in text or text.startswith("Traceback")
            ):
                self.problems.append(text)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log, for error messages."""
        with self._lock:
            shown = self._lines[-lines:]
        return "\n".join(f"    {line}" for line in shown) or "    (no output)"

    def logged(self, fragment: str) -> bool:
        """Whether any line so far contains ``fragment``."""
        with self._lock:
            return any(fragment in line for line in self._lines)

    def wait_logged(self, fragment: str, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait for a log line containing ``fragment``."""
        wait_until(
            lambda: self.logged(fragment), f"{self.label} to log {fragment!r}", [self], timeout
        )

    def check_alive(self) -> None:
        """Raise :class:`BenchError` with the log's tail if the process has exited."""
        code = self.proc.poll()
        if code is not None:
            self._reader.join(2)
            raise BenchError(
                f"{self.dialect}: {self.label} exited (code {code}); its log ends with:\n"
                f"{self.tail()}"
            )

    def kill_group(self) -> None:
        """Send SIGKILL to the whole process group (see :meth:`kill` to reap it too)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole process group, and reap the process."""
        self.kill_group()
        self.proc.wait()
        self._reader.join(5)

    def stop(self) -> None:
        """SIGTERM (a clean stop: a beat releases its lease) and wait; the suite fails if it
        is not gone within a minute (it is then killed) or exits with a non-zero code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                raise BenchError(
                    f"{self.dialect}: {self.label} was still running {STOP_TIMEOUT:.0f} s "
                    f"after SIGTERM and was killed; its log ends with:\n{self.tail()}"
                ) from None
        self._reader.join(5)
        if self.proc.returncode != 0:
            raise BenchError(
                f"{self.dialect}: {self.label} exited with code {self.proc.returncode} after "
                f"SIGTERM; its log ends with:\n{self.tail()}"
            )
        if self.problems:
            shown = "\n".join(f"    {line}" for line in self.problems)
            progress(f"{self.dialect}: warning: {self.label} logged errors:\n{shown}")


@contextmanager
def processes() -> Iterator[list[CliProcess]]:
    """A list to put started processes in; whatever is still running at the end is killed
    (the suite stops the ones it means to stop cleanly itself)."""
    started: list[CliProcess] = []
    try:
        yield started
    finally:
        for process in started:
            if process.proc.poll() is None:
                process.kill()


def wait_until(
    condition: Callable[[], bool],
    what: str,
    watched: Sequence[CliProcess],
    timeout: float = STARTUP_TIMEOUT,
    interval: float = LEASE_POLL_SECONDS,
) -> None:
    """Poll ``condition`` every ``interval`` until it holds; fail if a watched process dies
    or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in watched:
            process.check_alive()
        if time.monotonic() > deadline:
            logs = "\n".join(f"  {p.label}:\n{p.tail(15)}" for p in watched)
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(interval)


# -- reading the lease and the fires --------------------------------------------------------


def live_holder(lease: BeatLease | None) -> str | None:
    """Who holds the lease now (None: nobody, or a lease that has run out)."""
    if lease is None or lease.holder is None or lease.lease_until < time.time() * 1000:
        return None
    return lease.holder


def holder_of(holder: str | None, name: str) -> bool:
    """Whether the lease holder ``holder`` is the beat started with ``-n name`` (holders are
    ``<name>@<host>:<pid>:<random>``)."""
    return holder is not None and holder.startswith(f"{name}@")


@dataclass(frozen=True)
class Fire:
    """One workflow of the schedule: its scheduled second and its row's times (ms)."""

    second: int
    """The scheduled time, seconds since the epoch (from the id)."""
    created_at: int
    started_at: int | None

    @property
    def enqueue_lateness(self) -> int:
        """Milliseconds from the scheduled time to the row's ``created_at``."""
        return self.created_at - self.second * 1000

    @property
    def start_lateness(self) -> int | None:
        """Milliseconds from the scheduled time to ``started_at`` (None: not started)."""
        return None if self.started_at is None else self.started_at - self.second * 1000


def scheduled_second(workflow_id: str) -> int:
    """The scheduled second of a fire's id ``schedule:<name>:<YYYY-MM-DDTHH:MM:SSZ>``."""
    stamp = workflow_id.removeprefix(FIRE_PREFIX)
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return int(when.timestamp())


class FireRows(WorkflowRows):
    """The workflow table, read for the schedule's fires."""

    def fires(self) -> list[Fire]:
        """Every workflow of ``bench.scheduled``, by scheduled second. A workflow of it that
        is not one of the schedule's fires (none is expected) fails the suite."""
        rows = self._query(
            "SELECT id, created_at, started_at FROM {w} WHERE name = %s", [SCHEDULED]
        )
        out: list[Fire] = []
        for wid, created, started in rows:
            if not str(wid).startswith(FIRE_PREFIX):
                raise BenchError(f"{self.dialect}: unexpected {SCHEDULED} workflow {wid}")
            out.append(
                Fire(
                    scheduled_second(str(wid)),
                    int(created),
                    None if started is None else int(started),
                )
            )
        return sorted(out, key=lambda f: (f.second, f.created_at))


@contextmanager
def fire_rows(db: ScratchDatabase, options: Options, bench: BenchApp) -> Iterator[FireRows]:
    """:class:`FireRows` on ``db``, closed afterwards."""
    rows = FireRows(db, options, bench.app.conf.database_schema)
    try:
        yield rows
    finally:
        rows.close()


@dataclass(frozen=True)
class Coverage:
    """Fires against the seconds they should cover."""

    expected: int
    """Seconds in the range."""
    fired: int
    """Workflows of seconds in the range."""
    missing: int
    """Seconds in the range without a workflow (gaps)."""
    duplicate: int
    """Workflows beyond the first for a second."""

    @classmethod
    def of(cls, fires: Sequence[Fire], first: int, last: int) -> Coverage:
        """``fires`` against every second from ``first`` to ``last``, both included."""
        inside = [f.second for f in fires if first <= f.second <= last]
        distinct = set(inside)
        return cls(
            expected=last - first + 1,
            fired=len(inside),
            missing=sum(1 for s in range(first, last + 1) if s not in distinct),
            duplicate=len(inside) - len(distinct),
        )

    @property
    def exact(self) -> bool:
        """Every second once."""
        return self.missing == 0 and self.duplicate == 0


# -- part 1: lateness on an idle worker -----------------------------------------------------


@dataclass(frozen=True)
class IdleResult:
    """The lateness window on one dialect, in milliseconds."""

    enqueue: Summary
    start: Summary
    coverage: Coverage


def worker_with_beat_arguments() -> list[str]:
    """``taskflow worker``'s arguments with its beat (``-B``)."""
    return ["worker", *worker_arguments(), "-B"]


def worker_with_beat_shown() -> str:
    """The worker's command line as the report shows it."""
    return f"{worker_command_shown()} -B"


def idle_lateness(
    db: ScratchDatabase, options: Options, bench: BenchApp, rows: FireRows
) -> IdleResult:
    """A worker with its beat; a per-second schedule; every fire of the window measured."""
    seconds = window_seconds(options)
    schedules = bench.app.schedules
    broker = bench.app.broker
    with processes() as started:
        worker = CliProcess(db, options, "the worker", worker_with_beat_arguments())
        started.append(worker)
        worker.wait_logged(" ready.")
        wait_until(
            lambda: live_holder(broker.beat_lease()) is not None, "its beat to lead", [worker]
        )
        time.sleep(SETTLE_SECONDS)
        created = time.time()
        schedules.create(SCHEDULE, SCHEDULED, EVERY_SECOND)
        first = math.floor(created) + 1 + UNTIMED_SECONDS
        last = first + seconds - 1
        # The window is measured time: sleep through it, then poll until the beat has fired
        # its last second (or a later one: a second it skipped is then a gap, not a wait).
        time.sleep(max(0.0, last + 1 - time.time()))
        wait_until(
            lambda: any(f.second >= last for f in rows.fires()),
            f"the fire of the {seconds} s window's last second",
            [worker],
            timeout=FIRE_TIMEOUT,
        )
        schedules.delete(SCHEDULE)
        wait_until(
            lambda: all(
                f.started_at is not None for f in rows.fires() if first <= f.second <= last
            ),
            "the worker to start every fire of the window",
            [worker],
            timeout=FIRE_TIMEOUT,
        )
        worker.stop()
    fires = [f for f in rows.fires() if first <= f.second <= last]
    rows.clear()
    starts = [f.start_lateness for f in fires if f.start_lateness is not None]
    return IdleResult(
        enqueue=Summary.of([float(f.enqueue_lateness) for f in fires]),
        start=Summary.of([float(s) for s in starts]),
        coverage=Coverage.of(fires, first, last),
    )


# -- part 2: failover -----------------------------------------------------------------------


@dataclass(frozen=True)
class FailoverRound:
    """One SIGKILL of the leading beat."""

    lease_left: float
    """Seconds the dead leader's lease still had to run at the kill."""
    takeover: float
    """Seconds from the kill until the standby held the lease (read every 10 ms)."""
    after_expiry: float
    """Seconds from the dead leader's ``lease_until`` until the standby held the lease."""
    next_fire: float
    """Seconds from the kill to the ``created_at`` of the first fire written after it."""
    caught_up: int
    """Fires in the new leader's first write: seconds missed while nobody led, fired late."""
    oldest_late: float
    """Seconds late the oldest of those fires was written."""
    coverage: Coverage
    """Every second from the round's first fire to its last."""


def failover_round(
    db: ScratchDatabase, options: Options, bench: BenchApp, rows: FireRows, rng: random.Random
) -> FailoverRound:
    """Two beats, the per-second schedule, the leader killed at a random moment of its
    renewal cycle; the standby timed taking over."""
    broker = bench.app.broker
    before, after = fires_before_kill(options), fires_after_takeover(options)
    names = ("bench-a", "bench-b")
    with processes() as started:
        for name in names:
            started.append(
                CliProcess(db, options, f"beat {name}", ["beat", "-A", APP_SPEC, "-n", name])
            )
        for name, beat in zip(names, started, strict=True):
            beat.wait_logged(f"beat {name}@")
        wait_until(lambda: live_holder(broker.beat_lease()) is not None, "a beat to lead", started)
        bench.app.schedules.create(SCHEDULE, SCHEDULED, EVERY_SECOND)
        wait_until(
            lambda: len(rows.fires()) >= before,
            f"{before} fire(s) by the first leader",
            started,
            timeout=FIRE_TIMEOUT,
        )
        # The leader renews its lease at each fire: killing it right after one would always
        # leave a whole lease to run. A random wait samples the whole renewal cycle.
        time.sleep(rng.uniform(0.0, bench.app.conf.beat_max_interval))
        holder = live_holder(broker.beat_lease())
        leader = next((i for i, n in enumerate(names) if holder_of(holder, n)), None)
        if leader is None:
            raise BenchError(f"{db.dialect}: the lease is held by {holder!r}, not by a beat")
        victim, survivor = started[leader], started[1 - leader]
        standby = names[1 - leader]

        victim.kill_group()
        # Stamped after the signal, so nothing the dead leader wrote is stamped later.
        killed = time.perf_counter()
        killed_ms = time.time() * 1000
        victim.kill()
        dead = broker.beat_lease()  # the dead leader cannot renew it any more
        assert dead is not None
        wait_until(
            lambda: holder_of(live_holder(broker.beat_lease()), standby),
            "the standby to take the lease",
            [survivor],
            timeout=FIRE_TIMEOUT,
        )
        takeover = time.perf_counter() - killed
        taken_ms = time.time() * 1000

        def written_after_kill() -> list[Fire]:
            return [f for f in rows.fires() if f.created_at > killed_ms]

        wait_until(
            lambda: bool(written_after_kill()),
            "the new leader's first fire",
            [survivor],
            timeout=FIRE_TIMEOUT,
        )
        resumed = math.floor(taken_ms / 1000) + after
        wait_until(
            lambda: max(f.second for f in rows.fires()) >= resumed,
            f"{after} on-time fire(s) by the new leader",
            [survivor],
            timeout=FIRE_TIMEOUT,
        )
        survivor.stop()
    bench.app.schedules.delete(SCHEDULE)
    fires = rows.fires()
    rows.clear()
    later = [f for f in fires if f.created_at > killed_ms]
    first_write = min(f.created_at for f in later)
    caught = [f for f in later if f.created_at == first_write]
    return FailoverRound(
        lease_left=(dead.lease_until - killed_ms) / 1000,
        takeover=takeover,
        after_expiry=(taken_ms - dead.lease_until) / 1000,
        next_fire=(first_write - killed_ms) / 1000,
        caught_up=len(caught),
        oldest_late=max(f.enqueue_lateness for f in caught) / 1000,
        coverage=Coverage.of(fires, fires[0].second, fires[-1].second),
    )


# -- the suite ------------------------------------------------------------------------------


@dataclass
class DialectResult:
    """Both parts on one dialect."""

    dialect: str
    idle: IdleResult
    failover: list[FailoverRound] = field(default_factory=list)
    lease: float = 0.0
    """``beat_lease`` in force, seconds."""
    interval: float = 0.0
    """``beat_max_interval`` in force, seconds."""

    def spread(self, pick: Callable[[FailoverRound], float]) -> Summary:
        """One per-round failover figure over the rounds."""
        return Summary.of([pick(r) for r in self.failover])

    @property
    def failover_coverage(self) -> Coverage:
        """Seconds, missing and duplicates summed over every failover round."""
        c = [r.coverage for r in self.failover]
        return Coverage(
            sum(x.expected for x in c),
            sum(x.fired for x in c),
            sum(x.missing for x in c),
            sum(x.duplicate for x in c),
        )


def run_dialect(dialect: str, options: Options) -> DialectResult:
    """The lateness window, then the failover rounds, on one scratch database."""
    with (
        scratch_database(dialect, options) as db,
        producer_app(db, options) as bench,
        fire_rows(db, options, bench) as rows,
    ):
        idle = idle_lateness(db, options, bench, rows)
        progress(f"{dialect}: beat: {_idle_line(idle)}")
        conf = bench.app.conf
        result = DialectResult(
            dialect, idle, lease=conf.beat_lease, interval=conf.beat_max_interval
        )
        for index in range(failover_rounds(options)):
            rng = random.Random(index)  # the same kill moments on every dialect and every run
            r = failover_round(db, options, bench, rows, rng)
            result.failover.append(r)
            progress(f"{dialect}: beat failover round {index + 1}: {_failover_line(r)}")
    return result


def _idle_line(r: IdleResult) -> str:
    c = r.coverage
    return (
        f"enqueue lateness {r.enqueue.median:.0f} / {r.enqueue.p95:.0f} / "
        f"{r.enqueue.maximum:.0f} ms (median / p95 / max), start lateness "
        f"{r.start.median:.0f} / {r.start.p95:.0f} / {r.start.maximum:.0f} ms; "
        f"{c.fired} fires for {c.expected} seconds, {c.missing} missing, {c.duplicate} duplicate"
    )


def _failover_line(r: FailoverRound) -> str:
    c = r.coverage
    return (
        f"killed with {r.lease_left:.2f} s of lease left; takeover {r.takeover:.2f} s after "
        f"the kill ({r.after_expiry * 1000:.0f} ms after the lease ran out), next fire "
        f"{r.next_fire:.2f} s after the kill ({r.caught_up} caught up, the oldest "
        f"{r.oldest_late:.2f} s late); {c.fired} fires for {c.expected} seconds, "
        f"{c.missing} missing, {c.duplicate} duplicate"
    )


def run(options: Options) -> SuiteReport:
    """The suite: every requested dialect in turn, rendered as one report block."""
    results = [run_dialect(d, options) for d in options.dialects]
    return render(results, options)


# -- rendering ------------------------------------------------------------------------------


def render(results: Sequence[DialectResult], options: Options) -> SuiteReport:
    """The method, the headline table, then every failover round."""
    parts: list[str | Table] = [QUICK_NOTE] if options.quick else []
    parts.extend(
        [
            _method(results, options),
            summary_table(results),
            "Each failover round:",
            rounds_table(results),
        ]
    )
    return SuiteReport("beat", "Schedules: fire lateness and beat failover: results", parts)


def _method(results: Sequence[DialectResult], options: Options) -> str:
    lease = results[0].lease if results else 5.0
    interval = results[0].interval if results else 1.0
    return (
        f"**Fire lateness**: one `{worker_with_beat_shown()}` (a worker running a beat); once "
        f"its beat leads, the benchmark creates a schedule `{EVERY_SECOND}` (every second) of "
        f"`{SCHEDULED}` with `app.schedules.create`. After {UNTIMED_SECONDS} untimed seconds "
        "(a schedule created at run time is first seen at the beat's next round), every fire "
        f"scheduled in the next {window_seconds(options)} s is measured against its "
        "scheduled time (from its id `schedule:<name>:<UTC second>`): **enqueue lateness** = "
        "`created_at` (the beat wrote it), **start lateness** = `started_at` (the worker "
        "started it), whole milliseconds of the same clock. Every second must have exactly "
        "one workflow (a gap: none; a duplicate: two). **Failover**: two "
        f"`{beat_command_shown()}` processes (no worker) and the same schedule; after "
        f"{_count(fires_before_kill(options), 'fire')} and a random wait of up to "
        f"`beat_max_interval` (the leader renews its lease at every round: the wait samples "
        "the whole renewal cycle), the leader's process group gets SIGKILL. **Lease left** "
        "= the dead leader's `lease_until` minus the kill time; **kill to takeover**: until "
        f"`broker.beat_lease()`, read every {LEASE_POLL_SECONDS * 1000:.0f} ms, names the "
        "other beat; **lease ran out to takeover**: the same moment minus the dead leader's "
        "`lease_until` (the standby checks once per `beat_max_interval`); **kill to next "
        "fire**: to the `created_at` of the first workflow written after the kill. The new "
        "leader's first round fires the seconds missed while nobody led (late, but within "
        "`beat_misfire_grace_time`), in one transaction: **caught up**. After "
        f"{_count(fires_after_takeover(options), 'on-time second')} by the new leader it gets "
        "SIGTERM, and every second from the round's first fire to its last must have "
        f"exactly one workflow. Settings: `beat_lease` {lease:g} s, `beat_max_interval` "
        f"{interval:g} s (defaults). {_count(failover_rounds(options), 'failover round')} per "
        "dialect; the table gives the median over rounds (lowest to highest)."
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _lateness(s: Summary, bold: bool = False) -> str:
    text = f"{s.median:.0f} / {s.p95:.0f} / {s.maximum:.0f}"
    return f"**{text}**" if bold else text


def _range(s: Summary, scale: float, digits: int, bold: bool = False) -> str:
    median = f"{s.median * scale:.{digits}f}"
    return (
        f"{f'**{median}**' if bold else median} ({s.minimum * scale:.{digits}f} to "
        f"{s.maximum * scale:.{digits}f})"
    )


def _coverage(c: Coverage) -> str:
    return f"{c.fired:,} / {c.expected:,} / {c.missing} / {c.duplicate}"


def met(result: DialectResult) -> bool:
    """The target: every fire of the window enqueued within one second, none missing or
    twice."""
    idle = result.idle
    return idle.enqueue.maximum <= TARGET_LATENESS_MS and idle.coverage.exact


def summary_table(results: Sequence[DialectResult]) -> Table:
    """Metrics down, dialects across."""
    rows: list[list[str]] = [
        ["**enqueue lateness** (`created_at` - scheduled time), ms: median / p95 / max"],
        ["start lateness (`started_at` - scheduled time), ms: median / p95 / max"],
        ["fires / seconds in the window / missing / duplicate"],
        ["every fire enqueued within 1 s of its time, none missing or twice (target, idle system)"],
        ["every fire also started within 1 s"],
        ["failover: lease left at the kill, s"],
        ["**failover: kill to takeover**, s"],
        ["lease ran out to takeover, ms"],
        ["**kill to next fire**, s"],
        ["seconds caught up by the new leader"],
        ["the oldest caught-up second, s late"],
        ["failover rounds, all seconds: fires / seconds / missing / duplicate"],
    ]
    for result in results:
        idle = result.idle
        cells = [
            _lateness(idle.enqueue, bold=True),
            _lateness(idle.start),
            _coverage(idle.coverage),
            _yes(met(result)),
            _yes(idle.start.maximum <= TARGET_LATENESS_MS),
            _range(result.spread(lambda r: r.lease_left), 1, 2),
            _range(result.spread(lambda r: r.takeover), 1, 2, bold=True),
            _range(result.spread(lambda r: r.after_expiry), 1000, 0),
            _range(result.spread(lambda r: r.next_fire), 1, 2, bold=True),
            _range(result.spread(lambda r: r.caught_up), 1, 0),
            _range(result.spread(lambda r: r.oldest_late), 1, 2),
            _coverage(result.failover_coverage),
        ]
        for row, cell in zip(rows, cells, strict=True):
            row.append(cell)
    headers = ["", *(DIALECT_NAMES[r.dialect] for r in results)]
    return Table(headers, rows, "l" + "r" * len(results))


def rounds_table(results: Sequence[DialectResult]) -> Table:
    """One line per dialect and failover round."""
    headers = [
        "dialect",
        "round",
        "lease left at the kill, s",
        "kill to takeover, s",
        "lease ran out to takeover, ms",
        "kill to next fire, s",
        "caught up",
        "oldest caught up, s late",
        "fires / seconds / missing / duplicate",
    ]
    body = [
        [
            DIALECT_NAMES[result.dialect],
            str(index + 1),
            f"{r.lease_left:.2f}",
            f"{r.takeover:.2f}",
            f"{r.after_expiry * 1000:.0f}",
            f"{r.next_fire:.2f}",
            str(r.caught_up),
            f"{r.oldest_late:.2f}",
            _coverage(r.coverage),
        ]
        for result in results
        for index, r in enumerate(result.failover)
    ]
    return Table(headers, body, "llrrrrrrr")
