"""Suite ``durable``: how fast a message travels between two running workflows, and what a
parked workflow costs while it waits.

**Send-to-recv latency.** One ``taskflow worker -c 2`` runs two workflows of bench/app.py: the
ponger loops ``m = taskflow.recv("ping")`` and sends ``m`` back with ``taskflow.send(m["from"],
m, topic="pong")``; the pinger, for every exchange, sends a ping stamped with ``time.time()``
and waits for the answer with ``recv("pong")``. The two may run in different prefork children,
so every stamp is wall-clock time carried in the messages: one-way latency is measured on the
receiving side (the ponger's ``received`` minus the pinger's ``sent``, and the pinger's
``back`` minus the ponger's ``replied``), the round trip on the pinger. The worker runs with
``workflow_park_after`` far above any wait (``$TASKFLOW_BENCH_PARK_AFTER``, see bench/app.py),
so no wait parks: this is the in-thread wake path (the send's commit, the notification, the
waiting thread waking and taking the message). Then the same again on a worker with
``workflow_park_after=0``, where every wait parks: each message then wakes a DELAYED workflow,
which a worker claims again and replays from its checkpoints up to the ``recv`` (its history
grows by three or four steps per exchange, so the later exchanges replay more); reported
separately. Every ``recv`` and ``send`` is a recorded step: a run of 500 exchanges writes
about 2,000 step rows per workflow; what replaying that many costs is not what this measures.
A one-way hop slower than 0.5 s is counted apart: its wake-up was missed and came from the
worker's polling fallback.

**A parked workflow's cost.** On a worker with taskflow's default ``workflow_park_after``,
enqueue 10,000 workflows that each ``taskflow.sleep(3600)`` (longer than the threshold, so each
parks at once) and wait until all are DELAYED. Rows and bytes per parked workflow: the row
count of every taskflow table, and their total size, before and after, divided by 10,000.
Bytes are given as written (Postgres: ``pg_total_relation_size`` of every table, indexes and
TOAST included, with the dead row versions the status changes left; SQLite: pages in use) and
compacted (after ``VACUUM FULL`` on Postgres, ``VACUUM`` on SQLite, the worker stopped). CPU:
the user + system time (/proc/<pid>/stat) of the worker's process tree, of the Postgres
backends connected to the scratch database, and of every process of the Postgres server, over
a fixed idle window with the 10,000 asleep, against the same window on the same worker before
they were enqueued; on Postgres a ``VACUUM ANALYZE`` of the tables comes first, as autovacuum
would after so many updates. The machine's total busy time over each window says how much
else was running. CPU is given in % of one core.

Every round runs the three parts in turn, each on a new worker, emptying the tables after
each. ``--rounds`` sets how many (default 3); ``--quick`` runs one round of 20 exchanges, 5
parked exchanges and 200 sleeping workflows with 1 s windows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from psycopg import sql

from bench.app import PARK_AFTER_ENV, PINGER, PONGER, SLEEPER, BenchApp
from bench.common import DIALECT_NAMES, BenchError, Options, progress
from bench.databases import ScratchDatabase, scratch_database
from bench.report import QUICK_NOTE, SuiteReport, Table
from bench.stats import Summary, ms, rate
from bench.throughput import ENQUEUE_CHUNK, POLL_INTERVAL
from bench.workers import (
    WorkerProcess,
    WorkflowRows,
    producer_app,
    running_worker,
    worker_command_shown,
)
from taskflow import Status, WorkflowHandle

T = TypeVar("T")

EXCHANGES = 500
"""Timed ping-pong exchanges per round on a worker whose waits never park."""

QUICK_EXCHANGES = 20

PARKED_EXCHANGES = 100
"""Timed exchanges per round when every wait parks: each replays the whole history so far,
so fewer."""

QUICK_PARKED_EXCHANGES = 5

PARKED_WARMUP = 5
"""Untimed exchanges first when every wait parks (at most ``--warmup``): enough for the
children to connect, few enough that the timed exchanges do not start on a long history."""

NEVER_PARK = 3600.0
"""``workflow_park_after`` of the worker whose waits must not park: far above any wait."""

PARK_EVERY_WAIT = 0.0
"""``workflow_park_after`` of the worker whose every wait parks."""

RECV_TIMEOUT = 30.0
"""Seconds a workflow waits for one message before the run fails."""

SLEEPERS = 10_000
"""Workflows parked at once, asleep."""

QUICK_SLEEPERS = 200

SLEEP_SECONDS = 3600.0
"""How long each sleeps: far beyond the run, and beyond ``workflow_park_after``."""

WINDOW_SECONDS = 10.0
"""Length of each idle CPU window."""

QUICK_WINDOW_SECONDS = 1.0

SETTLE_SECONDS = 1.0
"""Idle time after ``ready.``, and after parking, before anything is measured."""

PARK_TIMEOUT = 300.0
"""Seconds all the sleepers may take to park."""

RESULT_TIMEOUT = 300.0
"""Seconds the ping-pong of one round may take."""

SLOW_SECONDS = 0.5
"""A one-way hop slower than this is counted apart: a wake-up that was missed and came from
the worker's polling fallback (``worker_poll_interval``, 1 s) instead of a notification."""

TARGET_MEDIAN_MS = 10.0
"""The issue's target: median one-way send-to-recv at most this, on local Postgres."""

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
"""Units of the CPU times in /proc."""


def rounds(options: Options) -> int:
    """Rounds of this run: ``--rounds`` (default 3), one with ``--quick``."""
    return 1 if options.quick else options.throughput_runs


def exchanges(options: Options, parked: bool) -> int:
    """Timed exchanges per round."""
    if parked:
        return QUICK_PARKED_EXCHANGES if options.quick else PARKED_EXCHANGES
    return QUICK_EXCHANGES if options.quick else EXCHANGES


def warmup(options: Options, parked: bool) -> int:
    """Untimed exchanges before the timed ones."""
    return min(options.sizes.warmup, PARKED_WARMUP) if parked else options.sizes.warmup


def sleepers(options: Options) -> int:
    """Workflows parked at once in this run."""
    return QUICK_SLEEPERS if options.quick else SLEEPERS


def window_seconds(options: Options) -> float:
    """Length of each CPU window in this run."""
    return QUICK_WINDOW_SECONDS if options.quick else WINDOW_SECONDS


# -- CPU time from /proc --------------------------------------------------------------------


def cpu_ticks(pid: int) -> int | None:
    """User + system CPU time of process ``pid`` (all its threads) in clock ticks; None when
    it is gone or not visible here."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: fields start after the last ")".
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def parents() -> dict[int, int]:
    """``pid -> parent pid`` of every process visible in /proc."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        found[int(entry)] = int(text[text.rfind(")") + 2 :].split()[1])
    return found


def is_postgres(pid: int) -> bool:
    """True if process ``pid`` here is a Postgres server process (a remote server's backend
    pid may name an unrelated local process)."""
    try:
        with open(f"/proc/{pid}/comm", encoding="ascii", errors="replace") as fh:
            return fh.read().strip().startswith("postgres")
    except OSError:
        return False


def process_tree(root: int, parent_of: dict[int, int]) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, parent in parent_of.items():
        children.setdefault(parent, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def machine_busy_ticks() -> int:
    """Busy time of every CPU since boot (all but idle and iowait), in clock ticks."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return user + nice + system + irq + softirq + steal


@dataclass(frozen=True)
class Groups:
    """The processes whose CPU time a window adds up, as seen at one moment."""

    worker: list[int]
    database: list[int] | None
    """Postgres backends connected to the scratch database (None: SQLite, or the server's
    processes are not visible here)."""
    server: list[int] | None
    """Every process of the Postgres server, its postmaster included."""


def groups_now(worker: WorkerProcess, rows: DurableRows) -> Groups:
    """The worker's process tree and, on Postgres, the server's processes, as now."""
    parent_of = parents()
    backends = rows.backend_pids()
    database: list[int] | None = None
    server: list[int] | None = None
    visible = [pid for pid in backends or () if pid in parent_of and is_postgres(pid)]
    if visible:
        database = visible
        server = process_tree(parent_of[visible[0]], parent_of)
    return Groups(process_tree(worker.proc.pid, parent_of), database, server)


@dataclass(frozen=True)
class CpuWindow:
    """CPU seconds spent during one idle window."""

    seconds: float
    """The window's length (wall clock)."""
    worker: float
    database: float | None
    server: float | None
    machine: float
    """Every CPU of the machine, all processes."""

    def percent(self, pick: Callable[[CpuWindow], float | None]) -> float | None:
        """One of the figures as % of one core."""
        value = pick(self)
        return None if value is None else value / self.seconds * 100


def measure_window(worker: WorkerProcess, rows: DurableRows, seconds: float) -> CpuWindow:
    """Sleep ``seconds`` and add up the CPU time each group of processes spent meanwhile.

    A process that started during the window counts from zero; one that ended during it is
    lost (neither happens in an idle worker unless something goes wrong)."""
    start = groups_now(worker, rows)
    seen = {*start.worker, *(start.server or ())}
    before = {pid: ticks for pid in seen if (ticks := cpu_ticks(pid)) is not None}
    machine_before = machine_busy_ticks()
    started = time.monotonic()
    time.sleep(seconds)
    machine_after = machine_busy_ticks()
    elapsed = time.monotonic() - started
    end = groups_now(worker, rows)

    def spent(pids: Sequence[int] | None) -> float | None:
        if pids is None:
            return None
        total = 0
        for pid in pids:
            ticks = cpu_ticks(pid)
            if ticks is not None:
                total += ticks - before.get(pid, 0)
        return total / CLOCK_TICKS

    worker_seconds = spent(end.worker)
    assert worker_seconds is not None
    return CpuWindow(
        elapsed,
        worker_seconds,
        spent(end.database),
        spent(end.server),
        (machine_after - machine_before) / CLOCK_TICKS,
    )


# -- the database ---------------------------------------------------------------------------


class DurableRows(WorkflowRows):
    """The workflow table and every other taskflow table, their rows and their size."""

    def __init__(self, db: ScratchDatabase, options: Options, schema: str) -> None:
        super().__init__(db, options, schema)
        self.schema = schema

    def _fetch(self, statement: sql.SQL | sql.Composed, params: Sequence[Any] = ()) -> list[Any]:
        """Run ``statement`` (``%s``: a parameter) on this dialect's connection."""
        if self._pg is not None:
            cursor = self._pg.execute(statement, params)
            return cursor.fetchall() if cursor.description is not None else []
        assert self._lite is not None
        text = statement.as_string().replace("%s", "?")
        return self._lite.execute(text, tuple(params)).fetchall()

    def _table(self, name: str) -> sql.Composable:
        if self._pg is not None:
            return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))
        return sql.Identifier(name)

    def tables(self) -> list[str]:
        """Every taskflow table, by name."""
        if self._pg is not None:
            found = self._fetch(
                sql.SQL("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1"),
                [self.schema],
            )
        else:
            found = self._fetch(
                sql.SQL("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
            )
        # SQLite's own tables (sqlite_sequence, sqlite_stat1) are not taskflow's.
        return [str(name) for (name,) in found if not str(name).startswith("sqlite_")]

    def table_rows(self) -> dict[str, int]:
        """Rows in each taskflow table."""
        counts: dict[str, int] = {}
        for name in self.tables():
            statement = sql.SQL("SELECT count(*) FROM {}").format(self._table(name))
            counts[name] = int(self._fetch(statement)[0][0])
        return counts

    def used_bytes(self) -> int:
        """Postgres: ``pg_total_relation_size`` of every taskflow table (indexes and TOAST
        included). SQLite: the database's pages in use (free pages not counted)."""
        if self._pg is not None:
            found = self._fetch(
                sql.SQL(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')"
                ),
                [self.schema],
            )
            return int(found[0][0])
        pages = int(self._fetch(sql.SQL("PRAGMA page_count"))[0][0])
        free = int(self._fetch(sql.SQL("PRAGMA freelist_count"))[0][0])
        size = int(self._fetch(sql.SQL("PRAGMA page_size"))[0][0])
        return (pages - free) * size

    def vacuum(self, full: bool) -> None:
        """Postgres: ``VACUUM ANALYZE`` (what autovacuum does after many updates) or ``VACUUM
        FULL`` (rewrites every table and index without dead row versions) of every taskflow
        table. SQLite: ``ANALYZE``, or ``VACUUM`` (rebuilds the file)."""
        if self._pg is not None:
            tables = sql.SQL(", ").join(self._table(name) for name in self.tables())
            verb = sql.SQL("VACUUM FULL" if full else "VACUUM ANALYZE")
            self._fetch(sql.SQL("{} {}").format(verb, tables))
            return
        self._fetch(sql.SQL("VACUUM" if full else "ANALYZE"))

    def asleep(self) -> int:
        """Workflows parked in a durable sleep."""
        found = self._query(
            "SELECT count(*) FROM {w} WHERE status = 'DELAYED' AND wait_kind = 'sleep'"
        )
        return int(found[0][0])

    def backend_pids(self) -> list[int] | None:
        """Postgres: the server process of every other connection to this database. SQLite:
        None."""
        if self._pg is None:
            return None
        found = self._fetch(
            sql.SQL(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        )
        return [int(pid) for (pid,) in found]

    def clear_all(self) -> None:
        """Delete what a round wrote: workflows, steps, messages, events and streams."""
        names = [
            n for n in ("workflows", "steps", "messages", "events", "streams") if n in self.tables()
        ]
        if self._pg is not None:
            joined = sql.SQL(", ").join(self._table(name) for name in names)
            self._fetch(sql.SQL("TRUNCATE {}").format(joined))
            return
        for name in names:
            self._fetch(sql.SQL("DELETE FROM {}").format(self._table(name)))


@contextmanager
def durable_rows(db: ScratchDatabase, options: Options, bench: BenchApp) -> Iterator[DurableRows]:
    """:class:`DurableRows` on ``db``, closed afterwards."""
    rows = DurableRows(db, options, bench.app.conf.database_schema)
    try:
        yield rows
    finally:
        rows.close()


# -- workers --------------------------------------------------------------------------------


@contextmanager
def park_after(seconds: float | None) -> Iterator[None]:
    """``workflow_park_after`` of the workers started in the block (None: taskflow's
    default). The worker's environment is a copy of this process's (bench/workers.py), so
    the setting goes through it, and is put back afterwards."""
    previous = os.environ.get(PARK_AFTER_ENV)
    if seconds is None:
        os.environ.pop(PARK_AFTER_ENV, None)
    else:
        os.environ[PARK_AFTER_ENV] = repr(seconds)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PARK_AFTER_ENV, None)
        else:
            os.environ[PARK_AFTER_ENV] = previous


def wait_for_result(handle: WorkflowHandle[T], worker: WorkerProcess, timeout: float) -> T:
    """The workflow's result once it is SUCCESS. Fails if it ends otherwise, if the worker
    exits, or after ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    while True:
        status = handle.status
        if status is Status.SUCCESS:
            return handle.get()
        if status.is_finished:
            raise BenchError(f"workflow {handle.id} ended {status}: {handle.info().error}")
        worker.check_alive()
        if time.perf_counter() > deadline:
            raise BenchError(
                f"workflow {handle.id} not done after {timeout:.0f} s (status {status}); "
                f"the worker's log ends with:\n{worker.tail()}"
            )
        time.sleep(POLL_INTERVAL)


# -- part 1: send-to-recv -------------------------------------------------------------------


@dataclass(frozen=True)
class PingRound:
    """One round of exchanges on one worker; every figure in seconds."""

    one_way: Summary
    """Send to recv, both directions pooled (2 samples per exchange)."""
    ping: Summary
    """Pinger's send to the ponger's recv."""
    pong: Summary
    """Ponger's send to the pinger's recv."""
    round_trip: Summary
    """The pinger's send to its recv of the answer."""
    per_second: float
    """Exchanges per second over the timed ones (first send to last answer)."""
    slow: int
    """One-way hops slower than :data:`SLOW_SECONDS`."""


def ping_pong(
    db: ScratchDatabase,
    options: Options,
    bench: BenchApp,
    rows: DurableRows,
    parked: bool,
) -> tuple[PingRound, str]:
    """One round: a new worker, a ponger and a pinger, the warmup exchanges then the timed
    ones. Returns the round and the worker's concurrency line."""
    untimed, timed = warmup(options, parked), exchanges(options, parked)
    total = untimed + timed
    with (
        park_after(PARK_EVERY_WAIT if parked else NEVER_PARK),
        running_worker(db, options) as worker,
    ):
        worker.wait_ready()
        time.sleep(SETTLE_SECONDS)
        ponger = bench.ponger.delay(total, RECV_TIMEOUT)
        pinger = bench.pinger.delay(ponger.id, total, RECV_TIMEOUT)
        stamps = wait_for_result(pinger, worker, RESULT_TIMEOUT)
        wait_for_result(ponger, worker, RESULT_TIMEOUT)
    rows.clear_all()
    if len(stamps) != total:
        raise BenchError(f"{db.dialect}: the pinger reported {len(stamps)} of {total} exchanges")
    kept = stamps[untimed:]
    ping = [received - sent for sent, received, _, _ in kept]
    pong = [back - replied for _, _, replied, back in kept]
    trip = [back - sent for sent, _, _, back in kept]
    span = kept[-1][3] - kept[0][0]
    result = PingRound(
        Summary.of(ping + pong),
        Summary.of(ping),
        Summary.of(pong),
        Summary.of(trip),
        len(kept) / span if span > 0 else 0.0,
        sum(1 for hop in ping + pong if hop > SLOW_SECONDS),
    )
    return result, worker.concurrency or "?"


# -- part 2: parked workflows ---------------------------------------------------------------


@dataclass(frozen=True)
class CostRound:
    """One round of parking the sleepers."""

    n: int
    park_seconds: float
    """From the first enqueue to seeing all of them parked."""
    rows_added: dict[str, int]
    """Rows each table gained."""
    bytes_written: int
    """Size the tables gained, as written."""
    bytes_compacted: int
    """Size the tables gained, once compacted (worker stopped)."""
    idle: CpuWindow
    """The window before any was enqueued."""
    asleep: CpuWindow
    """The window with all of them parked."""

    def rows_per(self, table: str) -> float:
        """Rows of ``table`` per parked workflow."""
        return self.rows_added.get(table, 0) / self.n

    def other_rows_per(self) -> float:
        """Rows of every table but workflows and steps, per parked workflow."""
        other = sum(v for k, v in self.rows_added.items() if k not in ("workflows", "steps"))
        return other / self.n


def wait_until_parked(rows: DurableRows, worker: WorkerProcess, n: int) -> None:
    """Poll until ``n`` workflows sleep parked. Fails if the worker exits, one of them ends,
    or they take longer than ``PARK_TIMEOUT``."""
    deadline = time.perf_counter() + PARK_TIMEOUT
    while (asleep := rows.asleep()) < n:
        worker.check_alive()
        error = rows.first_error()
        if error is not None:
            raise BenchError(f"{rows.dialect}: {error}")
        if time.perf_counter() > deadline:
            raise BenchError(
                f"{rows.dialect}: {asleep:,} of {n:,} workflows parked after "
                f"{PARK_TIMEOUT:.0f} s; the worker's log ends with:\n{worker.tail()}"
            )
        time.sleep(POLL_INTERVAL)


def parked_cost(
    db: ScratchDatabase, options: Options, bench: BenchApp, rows: DurableRows
) -> CostRound:
    """One round: a new worker with the default ``workflow_park_after``; the idle window;
    park the sleepers; rows and bytes; the window with them asleep; stop the worker; the
    compacted size; empty the tables."""
    n, seconds = sleepers(options), window_seconds(options)
    with park_after(None), running_worker(db, options) as worker:
        worker.wait_ready()
        time.sleep(SETTLE_SECONDS)
        idle = measure_window(worker, rows, seconds)
        rows_before, bytes_before = rows.table_rows(), rows.used_bytes()
        started = time.perf_counter()
        left = n
        while left:
            chunk = min(left, ENQUEUE_CHUNK)
            bench.sleeper.delay_many([(SLEEP_SECONDS,)] * chunk)
            left -= chunk
        wait_until_parked(rows, worker, n)
        park_seconds = time.perf_counter() - started
        rows_after, bytes_written = rows.table_rows(), rows.used_bytes()
        rows.vacuum(full=False)
        time.sleep(SETTLE_SECONDS)
        asleep = measure_window(worker, rows, seconds)
        if rows.asleep() != n:
            raise BenchError(f"{db.dialect}: only {rows.asleep():,} of {n:,} still asleep")
    rows.vacuum(full=True)
    bytes_compacted = rows.used_bytes()
    rows.clear_all()
    added = {k: v - rows_before.get(k, 0) for k, v in rows_after.items()}
    return CostRound(
        n,
        park_seconds,
        {k: v for k, v in added.items() if v},
        bytes_written - bytes_before,
        bytes_compacted - bytes_before,
        idle,
        asleep,
    )


# -- the suite ------------------------------------------------------------------------------


@dataclass
class DialectResult:
    """Every round of every part on one dialect."""

    dialect: str
    in_thread: list[PingRound] = field(default_factory=list)
    parked: list[PingRound] = field(default_factory=list)
    cost: list[CostRound] = field(default_factory=list)
    concurrency: str = "?"

    def across(self, part: Sequence[PingRound], pick: Callable[[PingRound], float]) -> float:
        """The median over rounds of one per-round figure."""
        return Summary.of([pick(r) for r in part]).median

    def cost_median(self, pick: Callable[[CostRound], float | None]) -> float | None:
        """The median over rounds of one cost figure (None where it was not measured)."""
        values = [v for r in self.cost if (v := pick(r)) is not None]
        return Summary.of(values).median if values else None


def run_dialect(dialect: str, options: Options) -> DialectResult:
    """Every round on one scratch database; each round runs the three parts in turn."""
    result = DialectResult(dialect)
    with (
        scratch_database(dialect, options) as db,
        producer_app(db, options) as bench,
        durable_rows(db, options, bench) as rows,
    ):
        for index in range(rounds(options)):
            label = f"{dialect}: durable round {index + 1}"
            ping, result.concurrency = ping_pong(db, options, bench, rows, parked=False)
            result.in_thread.append(ping)
            progress(f"{label}: never parked: {_ping_line(ping)}")
            ping, _ = ping_pong(db, options, bench, rows, parked=True)
            result.parked.append(ping)
            progress(f"{label}: every wait parked: {_ping_line(ping)}")
            cost = parked_cost(db, options, bench, rows)
            result.cost.append(cost)
            progress(f"{label}: {_cost_line(cost)}")
    return result


def _ping_line(r: PingRound) -> str:
    return (
        f"send-to-recv {ms(r.one_way.median)} / {ms(r.one_way.p95)} ms (median / p95), "
        f"round trip {ms(r.round_trip.median)} / {ms(r.round_trip.p95)} ms, "
        f"{r.per_second:,.0f} exchanges/s, {r.slow} of {r.one_way.count} hops over "
        f"{SLOW_SECONDS * 1000:.0f} ms"
    )


def _cost_line(c: CostRound) -> str:
    return (
        f"{c.n:,} parked in {c.park_seconds:.1f} s; "
        f"{c.bytes_written / c.n:,.0f} bytes each as written, "
        f"{c.bytes_compacted / c.n:,.0f} compacted; worker CPU "
        f"{_pct(c.idle.percent(_worker))} % idle, {_pct(c.asleep.percent(_worker))} % asleep"
    )


def run(options: Options) -> SuiteReport:
    """The suite: every requested dialect in turn, rendered as one report block."""
    results = [run_dialect(d, options) for d in options.dialects]
    return render(results, options)


# -- rendering ------------------------------------------------------------------------------


def _worker(w: CpuWindow) -> float:
    return w.worker


def _database(w: CpuWindow) -> float | None:
    return w.database


def _server(w: CpuWindow) -> float | None:
    return w.server


def _machine(w: CpuWindow) -> float:
    return w.machine


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def render(results: Sequence[DialectResult], options: Options) -> SuiteReport:
    """The method, the headline table, then every round of each part."""
    parts: list[str | Table] = [QUICK_NOTE] if options.quick else []
    parts.extend(
        [
            _method(results, options),
            summary_table(results, options),
            "Each round, messages:",
            ping_table(results),
            "Each round, parked workflows (CPU in % of one core: idle window / window with "
            "all asleep):",
            cost_table(results),
        ]
    )
    return SuiteReport("durable", "Messages between workflows and parked workflows: results", parts)


def _method(results: Sequence[DialectResult], options: Options) -> str:
    concurrency = ", ".join(
        f"{DIALECT_NAMES[r.dialect]}: {r.concurrency}" for r in results if r.concurrency != "?"
    )
    window = window_seconds(options)
    return (
        f"Every round runs three parts, each on a new `{worker_command_shown()}` (concurrency "
        f"as its banner states it: {concurrency or 'unknown'}), {SETTLE_SECONDS:g} s after its "
        f"`ready.`. **Send-to-recv**: a `{PONGER}` workflow loops `recv('ping')` and sends "
        f"each message back with `send(m['from'], m, topic='pong')`; a `{PINGER}` workflow "
        "sends a ping stamped with `time.time()` and waits for the answer with "
        f"`recv('pong')`, {warmup(options, False)} untimed then {exchanges(options, False)} "
        "timed exchanges. The two may run in different prefork children, so every stamp is "
        "wall-clock time carried in the messages (the pinger's arrival time in a step): "
        "**one way** = the receiver's time as `recv` returns minus the sender's just before "
        "`send`, both directions pooled; **round trip** on the pinger. The worker runs with "
        f"`workflow_park_after={NEVER_PARK:g}`, so no wait parks: this is the in-thread wake "
        "path. **Every wait parked**: the same on a worker with `workflow_park_after=0`, "
        f"{warmup(options, True)} untimed then {exchanges(options, True)} timed exchanges; "
        "each message then wakes a parked (DELAYED) workflow that is claimed again and "
        "replays its history (three or four steps per exchange so far) up to the `recv`. A "
        f"one-way hop over {SLOW_SECONDS * 1000:.0f} ms is counted apart: its wake-up came "
        "from the worker's 1 s polling fallback, not from a notification. Every `recv` and "
        "`send` is a recorded step. **Parked workflows**: on a worker with the default "
        f"`workflow_park_after`, enqueue {sleepers(options):,} `{SLEEPER}` workflows "
        f"(`taskflow.sleep({SLEEP_SECONDS:g})`, so each parks at once) and wait until all are "
        "DELAYED. Rows = what every taskflow table gained / the number parked. Bytes = what "
        "the tables gained / the number parked: as written (PostgreSQL: "
        "`pg_total_relation_size` of every table, indexes and TOAST included, dead row "
        "versions of the status changes too; SQLite: pages in use x page size) and "
        "compacted (PostgreSQL `VACUUM FULL`, SQLite `VACUUM`, with the worker stopped). "
        f"CPU = user + system time from /proc/<pid>/stat over a {window:g} s window with all "
        "asleep, against a window of the same length on the same worker before any was "
        "enqueued; on PostgreSQL a `VACUUM ANALYZE` of the tables comes first (as "
        "autovacuum would after so many updates). Counted: the worker's process tree, the "
        "PostgreSQL backends connected to the scratch database, and every process of the "
        "PostgreSQL server (the last includes whatever else uses the server), each in % of "
        "one core; the whole machine's busy time (all processes, all cores) shows what else "
        f"ran. {rounds(options)} round(s); the table gives the median over rounds of each "
        "round's median and p95, and of each round's cost figures."
    )


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _latency(result: DialectResult, part: Sequence[PingRound], pick: str, bold: bool) -> str:
    def summary(r: PingRound) -> Summary:
        value = getattr(r, pick)
        assert isinstance(value, Summary)
        return value

    text = (
        f"{ms(result.across(part, lambda r: summary(r).median), 2)} / "
        f"{ms(result.across(part, lambda r: summary(r).p95), 2)}"
    )
    return f"**{text}**" if bold else text


def _slow(part: Sequence[PingRound]) -> str:
    slow = sum(r.slow for r in part)
    hops = sum(r.one_way.count for r in part)
    return f"{slow:,} of {hops:,}"


def _cpu_pair(result: DialectResult, pick: Callable[[CpuWindow], float | None]) -> str:
    idle = result.cost_median(lambda c: c.idle.percent(pick))
    asleep = result.cost_median(lambda c: c.asleep.percent(pick))
    return f"{_pct(idle)} / {_pct(asleep)}"


def summary_table(results: Sequence[DialectResult], options: Options) -> Table:
    """Metrics down, dialects across."""
    n = sleepers(options)
    rows: list[list[str]] = [
        ["**send-to-recv, one way, no wait parks**, ms: median / p95"],
        [f"median at most {TARGET_MEDIAN_MS:.0f} ms (target, local PostgreSQL)"],
        ["each direction, ms (median): pinger to ponger / ponger to pinger"],
        ["round trip, ms: median / p95"],
        ["exchanges per second (one pinger, one ponger)"],
        ["**send-to-recv, one way, every wait parked** (re-claim and replay), ms: median / p95"],
        ["round trip, every wait parked, ms: median / p95"],
        [
            f"one-way hops slower than {SLOW_SECONDS * 1000:.0f} ms, all rounds: never park / "
            "every wait parked"
        ],
        [f"**{n:,} sleeping workflows parked**: seconds to park all (workflows/s)"],
        ["rows per parked workflow: `workflows` / `steps` / every other table"],
        ["**bytes per parked workflow**: as written / compacted"],
        ["**CPU of the worker** (process tree), % of one core: idle / all asleep"],
        ["CPU of the scratch database's PostgreSQL backends, %: idle / all asleep"],
        ["CPU of the whole PostgreSQL server (other users too), %: idle / all asleep"],
        ["whole machine busy (all processes, all cores), % of one core: idle / all asleep"],
    ]
    for result in results:
        median = result.across(result.in_thread, lambda r: r.one_way.median)
        park = result.cost_median(lambda c: c.park_seconds)
        assert park is not None
        cells = [
            _latency(result, result.in_thread, "one_way", bold=True),
            _yes(median * 1000 <= TARGET_MEDIAN_MS),
            f"{ms(result.across(result.in_thread, lambda r: r.ping.median), 2)} / "
            f"{ms(result.across(result.in_thread, lambda r: r.pong.median), 2)}",
            _latency(result, result.in_thread, "round_trip", bold=False),
            rate(result.across(result.in_thread, lambda r: r.per_second)),
            _latency(result, result.parked, "one_way", bold=True),
            _latency(result, result.parked, "round_trip", bold=False),
            f"{_slow(result.in_thread)} / {_slow(result.parked)}",
            f"{park:.1f} ({rate(n / park)})",
            " / ".join(
                f"{result.cost_median(pick) or 0:.2f}"
                for pick in (
                    lambda c: c.rows_per("workflows"),
                    lambda c: c.rows_per("steps"),
                    lambda c: c.other_rows_per(),
                )
            ),
            f"**{result.cost_median(lambda c: c.bytes_written / c.n) or 0:,.0f} / "
            f"{result.cost_median(lambda c: c.bytes_compacted / c.n) or 0:,.0f}**",
            f"**{_cpu_pair(result, _worker)}**",
            _cpu_pair(result, _database),
            _cpu_pair(result, _server),
            _cpu_pair(result, _machine),
        ]
        for row, cell in zip(rows, cells, strict=True):
            row.append(cell)
    headers = ["", *(DIALECT_NAMES[r.dialect] for r in results)]
    return Table(headers, rows, "l" + "r" * len(results))


def ping_table(results: Sequence[DialectResult]) -> Table:
    """One line per dialect, path and round."""
    headers = [
        "dialect",
        "waits",
        "round",
        "one way ms: median / p95",
        "pinger to ponger ms: median / p95",
        "ponger to pinger ms: median / p95",
        "round trip ms: median / p95",
        "exchanges/s",
        f"hops over {SLOW_SECONDS * 1000:.0f} ms",
    ]
    body = [
        [
            DIALECT_NAMES[result.dialect],
            path,
            str(index + 1),
            f"{ms(r.one_way.median, 2)} / {ms(r.one_way.p95, 2)}",
            f"{ms(r.ping.median, 2)} / {ms(r.ping.p95, 2)}",
            f"{ms(r.pong.median, 2)} / {ms(r.pong.p95, 2)}",
            f"{ms(r.round_trip.median, 2)} / {ms(r.round_trip.p95, 2)}",
            rate(r.per_second),
            f"{r.slow} of {r.one_way.count}",
        ]
        for result in results
        for path, part in (("never park", result.in_thread), ("every wait parks", result.parked))
        for index, r in enumerate(part)
    ]
    return Table(headers, body, "lllrrrrrr")


def cost_table(results: Sequence[DialectResult]) -> Table:
    """One line per dialect and round."""
    headers = [
        "dialect",
        "round",
        "parked",
        "seconds to park",
        "rows added",
        "bytes each: as written / compacted",
        "worker CPU %",
        "scratch database backends CPU %",
        "PostgreSQL server CPU %",
        "machine busy %",
    ]
    body = [
        [
            DIALECT_NAMES[result.dialect],
            str(index + 1),
            f"{c.n:,}",
            f"{c.park_seconds:.1f}",
            ", ".join(f"{k} {v:,}" for k, v in sorted(c.rows_added.items())) or "none",
            f"{c.bytes_written / c.n:,.0f} / {c.bytes_compacted / c.n:,.0f}",
            *(
                f"{_pct(c.idle.percent(pick))} / {_pct(c.asleep.percent(pick))}"
                for pick in (_worker, _database, _server, _machine)
            ),
        ]
        for result in results
        for index, c in enumerate(result.cost)
    ]
    return Table(headers, body, "llrrlrrrrr")
