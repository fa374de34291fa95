"""Suite ``retention``: does pruning 1,000,000 finished workflows stall a running worker?

PostgreSQL only (retention's locking, ``FOR UPDATE SKIP LOCKED`` in short batches, is what
is measured; SQLite has one writer at a time by design). On a scratch database, three
statements insert 1,000,000 finished workflows (one in 20 ERROR, the rest SUCCESS) dated a
day earlier, one step each, and one read message per 10 workflows, then ``VACUUM ANALYZE``.
A ``taskflow worker -c 2 -Q default`` starts (its own retention, 7 days by default, leaves
day-old rows alone), and a producer thread enqueues one no-op workflow every 5-15 ms
(uniform) for the whole suite:

1. **idle**: the trickle alone for a while;
2. **pruning**: on a connection pool of its own, the benchmark runs
   ``taskflow.retention.prune`` (what ``taskflow prune`` and a worker's retention run)
   with a cutoff just after the filled rows, batches of 1,000 workflows, until done.

Claim latency is each trickle workflow's enqueue-to-start, ``started_at - created_at`` from
its row (whole milliseconds of one clock), summarized per phase. Pruning is reported as
workflows removed per second and the time of each batch (each one transaction). ``--quick``
fills 20,000 workflows and trickles 2 s idle. ``--rounds`` does not apply: one fill, one
prune.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from bench.app import NOOP, BenchApp
from bench.common import DIALECT_NAMES, BenchError, Options, progress
from bench.databases import ScratchDatabase, scratch_database
from bench.report import SuiteReport, Table, suite_report
from bench.stats import Summary, ms, rate
from bench.workers import (
    WorkerProcess,
    WorkflowRows,
    producer_app,
    running_worker,
    worker_command_shown,
    workflow_rows,
)
from taskflow import retention
from taskflow.broker import create_broker
from taskflow.broker.base import PruneResult
from taskflow.config import Config

FILL = 1_000_000
QUICK_FILL = 20_000
MESSAGE_EVERY = 10
"""One read message for every this many filled workflows."""
BATCH = 1_000
IDLE_SECONDS = 15.0
QUICK_IDLE_SECONDS = 2.0
GAP_SECONDS = (0.005, 0.015)
"""The random wait between two trickle enqueues (uniform)."""
SETTLE_SECONDS = 1.0
"""Idle time after ``ready.`` before the trickle starts."""
DONE_TIMEOUT = 60.0
"""Seconds the last trickle workflows may take to finish once the trickle stops."""
DAY_MS = 86_400_000


def fill_size(options: Options) -> int:
    """Finished workflows filled in this run."""
    return QUICK_FILL if options.quick else FILL


@dataclass(frozen=True)
class Result:
    """The suite's figures; times in seconds."""

    filled: int
    fill_seconds: float
    idle: Summary
    """Enqueue-to-start of the trickle before pruning."""
    pruning: Summary
    """Enqueue-to-start of the trickle while pruning ran."""
    removed: PruneResult
    prune_seconds: float
    batches: Summary
    """Duration of each prune batch (one transaction)."""
    left: int
    """Filled workflows still there afterwards (0 expected)."""


def fill(db: ScratchDatabase, schema: str, n: int, base: int) -> float:
    """Insert ``n`` finished workflows finished at ``base + 2 .. base + n + 1`` ms, one step
    each and a read message for every :data:`MESSAGE_EVERY`; ``VACUUM ANALYZE``. Returns the
    seconds it took."""
    started = time.perf_counter()
    tables = {t: sql.Identifier(schema, t) for t in ("workflows", "steps", "messages")}
    params = {"base": base, "n": n, "every": MESSAGE_EVERY}
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, name, status, queue, inputs, output, error, executor_id, "
                "app_version, attempts, created_at, updated_at, started_at, finished_at) "
                "SELECT 'old-' || x, %(noop)s, "
                "CASE WHEN mod(x, 20) = 0 THEN 'ERROR' ELSE 'SUCCESS' END, 'default', "
                '\'{{"args":[],"kwargs":{{}}}}\', '
                "CASE WHEN mod(x, 20) = 0 THEN NULL ELSE 'null' END, "
                "CASE WHEN mod(x, 20) = 0 THEN '{{\"type\":\"x\"}}' END, 'bench-history', "
                "'bench', 1, %(base)s + x, %(base)s + x + 1, %(base)s + x, %(base)s + x + 1 "
                "FROM generate_series(1, %(n)s) AS g(x)"
            ).format(tables["workflows"]),
            {**params, "noop": NOOP},
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (workflow_id, step_id, name, output, started_at, finished_at) "
                "SELECT 'old-' || x, 0, 'bench.step', 'null', %(base)s + x, %(base)s + x "
                "FROM generate_series(1, %(n)s) AS g(x)"
            ).format(tables["steps"]),
            params,
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (destination_id, topic, message, created_at, consumed_at) "
                "SELECT 'old-' || (x * %(every)s), '', '\"m\"', %(base)s + x, %(base)s + x "
                "FROM generate_series(1, %(n)s / %(every)s) AS g(x)"
            ).format(tables["messages"]),
            params,
        )
        for table in tables.values():
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
    return time.perf_counter() - started


class Trickle:
    """A thread enqueueing one no-op workflow every 5-15 ms; :meth:`mark` starts a new
    phase, whose ids are kept apart."""

    def __init__(self, bench: BenchApp, worker: WorkerProcess) -> None:
        self._bench = bench
        self._worker = worker
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.phases: list[list[str]] = [[]]
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-trickle", daemon=True)

    def start(self) -> None:
        """Start enqueueing."""
        self._thread.start()

    def mark(self) -> None:
        """Begin the next phase."""
        with self._lock:
            self.phases.append([])

    def stop(self) -> None:
        """Stop enqueueing (raising what the thread hit, if anything)."""
        self._stop.set()
        self._thread.join(30)
        if self.error is not None:
            raise BenchError(f"the trickle failed: {self.error}")

    def _run(self) -> None:
        rng = random.Random(7)
        noop = self._bench.noop
        try:
            while not self._stop.wait(rng.uniform(*GAP_SECONDS)):
                handle = noop.delay()
                with self._lock:
                    self.phases[-1].append(handle.id)
        except BaseException as exc:  # reported by stop()
            self.error = exc


def wait_finished(rows: WorkflowRows, worker: WorkerProcess) -> None:
    """Wait until no workflow is ENQUEUED or PENDING."""
    deadline = time.perf_counter() + DONE_TIMEOUT
    while rows.open_work():
        worker.check_alive()
        if time.perf_counter() > deadline:
            raise BenchError(
                f"trickle workflows still open {DONE_TIMEOUT:.0f} s after the trickle "
                f"stopped; the worker's log ends with:\n{worker.tail()}"
            )
        time.sleep(0.05)


def to_start(rows: WorkflowRows, ids: Sequence[str]) -> Summary:
    """Enqueue-to-start of ``ids``, in seconds."""
    if not ids:
        raise BenchError("no trickle workflow was enqueued in a phase")
    times = rows.times(ids)
    return Summary.of([(started - created) / 1000 for created, started, _ in times.values()])


def run_postgres(options: Options) -> Result:
    """Fill, start a worker and the trickle, then prune while it runs."""
    n = fill_size(options)
    with (
        scratch_database("postgres", options) as db,
        producer_app(db, options) as bench,
        workflow_rows(db, options, bench) as rows,
    ):
        schema = bench.app.conf.database_schema
        base = int(time.time() * 1000) - DAY_MS - n - 10
        progress(f"retention: filling {n:,} finished workflows")
        fill_seconds = fill(db, schema, n, base)
        progress(f"retention: filled in {fill_seconds:.1f} s")
        pruner = create_broker(Config(database_url=db.url, database_schema=schema))
        try:
            with running_worker(db, options) as worker:
                worker.wait_ready()
                time.sleep(SETTLE_SECONDS)
                trickle = Trickle(bench, worker)
                trickle.start()
                try:
                    time.sleep(QUICK_IDLE_SECONDS if options.quick else IDLE_SECONDS)
                    trickle.mark()
                    batches: list[float] = []
                    last = [time.perf_counter()]

                    def timed(_: PruneResult) -> None:
                        now = time.perf_counter()
                        batches.append(now - last[0])
                        last[0] = now

                    began = last[0]
                    removed = retention.prune(
                        pruner,
                        base + n + 2,
                        batch=BATCH,
                        now=lambda: int(time.time() * 1000),
                        on_batch=timed,
                    )
                    prune_seconds = time.perf_counter() - began
                    trickle.mark()
                finally:
                    trickle.stop()
                wait_finished(rows, worker)
        finally:
            pruner.close()
        with psycopg.connect(db.url, autocommit=True) as conn:
            query = sql.SQL("SELECT count(*) FROM {} WHERE id LIKE 'old-%'")
            found = conn.execute(query.format(sql.Identifier(schema, "workflows"))).fetchone()
        left = found[0] if found is not None else 0
        idle, pruning = trickle.phases[0], trickle.phases[1]
        result = Result(
            filled=n,
            fill_seconds=fill_seconds,
            idle=to_start(rows, idle),
            pruning=to_start(rows, pruning),
            removed=removed,
            prune_seconds=prune_seconds,
            batches=Summary.of(batches),
            left=int(left),
        )
    progress(
        f"retention: pruned {removed.workflows:,} workflows in {prune_seconds:.1f} s; claim "
        f"latency idle {ms(result.idle.median, 0)} / {ms(result.idle.p95, 0)} ms, during "
        f"pruning {ms(result.pruning.median, 0)} / {ms(result.pruning.p95, 0)} ms "
        "(median / p95)"
    )
    return result


def run(options: Options) -> SuiteReport:
    """The suite (PostgreSQL only), rendered as one report block."""
    if "postgres" not in options.dialects:
        raise BenchError("the retention suite runs on PostgreSQL only (--dialect postgres)")
    return render(run_postgres(options), options)


# -- rendering ------------------------------------------------------------------------------


def render(result: Result, options: Options) -> SuiteReport:
    """The headline table, then the pruning figures."""
    return suite_report(
        "retention",
        f"Retention: pruning {result.filled:,} finished workflows under a running worker: results",
        options.quick,
        _method(result, options),
        latency_table(result),
        "Pruning:",
        prune_table(result),
    )


def _method(result: Result, options: Options) -> str:
    low, high = (round(x * 1000) for x in GAP_SECONDS)
    idle = QUICK_IDLE_SECONDS if options.quick else IDLE_SECONDS
    return (
        f"{DIALECT_NAMES['postgres']} only. {result.filled:,} finished workflows (one step "
        f"each, one read message per {MESSAGE_EVERY}) are inserted with `INSERT ... SELECT "
        f"generate_series` ({result.fill_seconds:.1f} s, then `VACUUM ANALYZE`). With "
        f"`{worker_command_shown()}` running and a producer enqueueing one `{NOOP}` every "
        f"{low}-{high} ms, the trickle runs {idle:.0f} s alone (**idle**), then "
        "`taskflow.retention.prune` (what `taskflow prune` and a worker's retention run) "
        f"removes every filled workflow in batches of {BATCH:,} (**pruning**, on its own "
        "connection pool). **Claim latency** is each trickle workflow's enqueue-to-start, "
        "`started_at - created_at` from its row (whole milliseconds)."
    )


def latency_table(result: Result) -> Table:
    """Claim latency per phase."""
    rows = [
        [
            label,
            f"{s.count:,}",
            f"**{ms(s.median, 0)}**",
            f"**{ms(s.p95, 0)}**",
            ms(s.maximum, 0),
        ]
        for label, s in (("idle", result.idle), ("during pruning", result.pruning))
    ]
    headers = ["phase", "workflows", "claim latency median, ms", "p95, ms", "max, ms"]
    return Table(headers, rows, "lrrrr")


def prune_table(result: Result) -> Table:
    """Throughput and batch times of the prune."""
    r, b = result.removed, result.batches
    rows = [
        ["workflows removed", f"{r.workflows:,} (left: {result.left:,})"],
        ["steps / messages removed", f"{r.steps:,} / {r.messages:,}"],
        ["time", f"{result.prune_seconds:.1f} s"],
        ["**workflows removed per second**", f"**{rate(r.workflows / result.prune_seconds)}**"],
        [
            f"one batch of {BATCH:,} (one transaction), ms: median / p95 / max",
            f"{ms(b.median, 1)} / {ms(b.p95, 1)} / {ms(b.maximum, 1)}",
        ],
    ]
    return Table(["", ""], rows, "lr")
