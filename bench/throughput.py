"""Suite ``throughput``: how many workflows one worker (``taskflow worker -c 2``) finishes per
second when its queue is full.

Each run enqueues N workflows first (``delay_many``, 5,000 at a time) and, on Postgres, runs
``ANALYZE`` on the workflow table, as autovacuum does on a database in use: without planner
statistics (a new or truncated table) Postgres plans the claim as a sort of every queued row
rather than a walk of the claim index, 2-4 ms per claim with 5,000 queued instead of 0.03 ms.
Then it starts the worker as a real subprocess and waits until every workflow is SUCCESS.
The figure is N divided by the time from the first claim to the last outcome, both read from
the database: min(started_at) to max(finished_at). For comparison it also gives N divided by
the wall time from the worker's ``ready.`` log line to the moment the benchmark saw no
workflow left ENQUEUED or PENDING (polled every 10 ms). The worker is then stopped with
SIGTERM and waited for, and the tables are emptied for the next run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.app import NOOP, THREE_STEPS, BenchApp
from bench.common import DIALECT_NAMES, BenchError, Options, progress
from bench.databases import ScratchDatabase, scratch_database
from bench.report import SuiteReport, Table, suite_report
from bench.stats import Summary, rate
from bench.workers import (
    WorkerProcess,
    WorkflowRows,
    producer_app,
    running_worker,
    worker_command_shown,
    workflow_rows,
)

SIZES = (5_000, 50_000)
"""Workflows per run (each workflow kind, each size)."""

QUICK_SIZES = (500,)

ENQUEUE_CHUNK = 5_000
"""Workflows per ``delay_many`` call when filling the queue."""

POLL_INTERVAL = 0.01
"""Seconds between the benchmark's checks for work left."""

STALL_TIMEOUT = 60.0
"""Seconds without one more workflow finishing before the run fails."""

STEPS = {NOOP: 0, THREE_STEPS: 3}

TARGETS = {NOOP: 6_500, THREE_STEPS: 2_500}
"""Workflows per second the issue asks for."""


@dataclass(frozen=True)
class Case:
    """One workload: a workflow kind and how many of them."""

    workflow: str
    n: int

    @property
    def label(self) -> str:
        """How the report names it."""
        steps = STEPS[self.workflow]
        kind = "no-op workflows" if steps == 0 else f"workflows of {steps} no-op steps"
        return f"{self.n:,} {kind}"


def cases(options: Options) -> list[Case]:
    """Every workload of this run, in report order."""
    sizes = QUICK_SIZES if options.quick else SIZES
    return [Case(workflow, n) for workflow in (NOOP, THREE_STEPS) for n in sizes]


@dataclass(frozen=True)
class Run:
    """One run of one case."""

    n: int
    database_seconds: float
    """max(finished_at) - min(started_at)."""
    wall_seconds: float
    """From the worker's ``ready.`` to seeing no work left."""
    startup_seconds: float
    """From spawning the worker to its ``ready.``."""
    enqueue_seconds: float
    """Filling the queue before the worker started."""

    @property
    def per_second(self) -> float:
        """Workflows per second, from the database's timestamps."""
        return self.n / self.database_seconds

    @property
    def wall_per_second(self) -> float:
        """Workflows per second over the wall time from ``ready.``."""
        return self.n / self.wall_seconds


@dataclass(frozen=True)
class DialectResult:
    """Every run of every case on one dialect."""

    dialect: str
    runs: dict[Case, list[Run]]
    concurrency: str
    """The worker banner's concurrency line."""

    def rates(self, case: Case) -> Summary:
        """Workflows/s (database timestamps) over the runs of ``case``."""
        return Summary.of([r.per_second for r in self.runs[case]])

    def wall_rates(self, case: Case) -> Summary:
        """Workflows/s (wall time from ``ready.``) over the runs of ``case``."""
        return Summary.of([r.wall_per_second for r in self.runs[case]])


def fill_queue(bench: BenchApp, case: Case) -> float:
    """Enqueue the case's workflows; return the seconds it took."""
    wf = bench.workflow(case.workflow)
    started = time.perf_counter()
    left = case.n
    while left:
        chunk = min(left, ENQUEUE_CHUNK)
        wf.delay_many([()] * chunk)
        left -= chunk
    return time.perf_counter() - started


def wait_until_done(rows: WorkflowRows, worker: WorkerProcess, n: int) -> float:
    """Poll until nothing is ENQUEUED or PENDING; return the ``perf_counter`` time it was
    seen. Fails if the worker exits or nothing finishes for ``STALL_TIMEOUT`` seconds."""
    progress_at = time.perf_counter()
    left = n
    next_count = progress_at + 1.0
    while rows.open_work():
        now = time.perf_counter()
        worker.check_alive()
        if now >= next_count:
            still = rows.unfinished()
            if still < left:
                left, progress_at = still, now
            elif now - progress_at > STALL_TIMEOUT:
                raise BenchError(
                    f"{rows.dialect}: no workflow finished in {STALL_TIMEOUT:.0f} s "
                    f"({still:,} of {n:,} left); the worker's log ends with:\n{worker.tail()}"
                )
            next_count = now + 1.0
        time.sleep(POLL_INTERVAL)
    return time.perf_counter()


def run_case(
    db: ScratchDatabase, options: Options, bench: BenchApp, rows: WorkflowRows, case: Case
) -> tuple[Run, str]:
    """One run: fill the queue (then, on Postgres, ANALYZE the table), start the worker, wait
    for every outcome, stop it, check the outcomes, empty the tables. Returns the run and the
    worker's concurrency line."""
    rows.clear()
    enqueue_seconds = fill_queue(bench, case)
    rows.analyze()
    with running_worker(db, options) as worker:
        ready = worker.wait_ready()
        done = wait_until_done(rows, worker, case.n)
    found = rows.by_status()
    if found != {"SUCCESS": case.n}:
        raise BenchError(
            f"{db.dialect}: expected {case.n:,} SUCCESS, found {found}; "
            f"{rows.first_error() or 'no error recorded'}"
        )
    count, first_start, last_finish = rows.span()
    if count != case.n:
        raise BenchError(f"{db.dialect}: expected {case.n:,} workflows, found {count:,}")
    # Timestamps are whole milliseconds: a run shorter than 1 ms cannot be measured.
    database_seconds = max(last_finish - first_start, 1) / 1000
    run = Run(case.n, database_seconds, done - ready, worker.startup, enqueue_seconds)
    rows.clear()
    return run, worker.concurrency or "?"


def run_dialect(dialect: str, options: Options) -> DialectResult:
    """Every case, ``rounds`` times each, on one scratch database."""
    runs: dict[Case, list[Run]] = {}
    concurrency = "?"
    with (
        scratch_database(dialect, options) as db,
        producer_app(db, options) as bench,
        workflow_rows(db, options, bench) as rows,
    ):
        for case in cases(options):
            runs[case] = []
            for index in range(options.throughput_runs):
                run, concurrency = run_case(db, options, bench, rows, case)
                runs[case].append(run)
                progress(f"{dialect}: {case.label}, round {index + 1}: {_run_line(run)}")
    return DialectResult(dialect, runs, concurrency)


def _run_line(r: Run) -> str:
    return (
        f"{rate(r.per_second)} workflows/s ({r.database_seconds:.3f} s first start to last "
        f"finish; {rate(r.wall_per_second)}/s from 'ready.'); worker ready in "
        f"{r.startup_seconds:.2f} s; queue filled in {r.enqueue_seconds:.2f} s"
    )


def run(options: Options) -> SuiteReport:
    """The suite: every requested dialect in turn, rendered as one report block."""
    results = [run_dialect(d, options) for d in options.dialects]
    return render(results, options)


# -- rendering ------------------------------------------------------------------------------


def render(results: Sequence[DialectResult], options: Options) -> SuiteReport:
    """The headline table, then the figures of every run."""
    return suite_report(
        "throughput",
        "Worker throughput: results",
        options.quick,
        _method(results, options),
        summary_table(results, options),
        "Each run:",
        runs_table(results),
    )


def _method(results: Sequence[DialectResult], options: Options) -> str:
    concurrency = ", ".join(
        f"{DIALECT_NAMES[r.dialect]}: {r.concurrency}" for r in results if r.concurrency != "?"
    )
    return (
        f"For each workload, {options.throughput_runs} runs. A run enqueues the workflows first "
        f"(`delay_many`, {ENQUEUE_CHUNK:,} at a time) and on PostgreSQL runs `ANALYZE` on the "
        "workflow table, as autovacuum does on a database in use (without statistics, as on a "
        "new or truncated table, PostgreSQL plans the claim as a sort of every queued row "
        "instead of a walk of the claim index: 2-4 ms per claim with 5,000 queued instead of "
        f"0.03 ms). Then it starts `{worker_command_shown()}` "
        f"as a subprocess (concurrency as its banner states it: {concurrency or 'unknown'}) "
        "and waits until all are SUCCESS. **Workflows/s = N / (last `finished_at` - first "
        "`started_at`)**, both from the database (millisecond timestamps): from the first "
        "claim to the last outcome written. Also N / the wall time from the worker's `ready.` "
        f"log line to the benchmark seeing no workflow ENQUEUED or PENDING (polled every "
        f"{POLL_INTERVAL * 1000:.0f} ms). Then SIGTERM, wait for the worker, empty the "
        "tables. The table gives the median run, with the lowest and highest."
    )


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def summary_table(results: Sequence[DialectResult], options: Options) -> Table:
    """Metrics down, dialects across."""
    rows: list[list[str]] = []
    for case in cases(options):
        target = TARGETS[case.workflow]
        rows.append([f"**{case.label}**: workflows/s (lowest to highest run)"])
        for result in results:
            s = result.rates(case)
            rows[-1].append(f"**{rate(s.median)}** ({rate(s.minimum)} to {rate(s.maximum)})")
        rows.append([f"at least {target:,}/s (target)"])
        for result in results:
            rows[-1].append(_yes(result.rates(case).median >= target))
        rows.append(["workflows/s from `ready.`, wall time (median)"])
        for result in results:
            rows[-1].append(rate(result.wall_rates(case).median))
    headers = ["", *(DIALECT_NAMES[r.dialect] for r in results)]
    return Table(headers, rows, "l" + "r" * len(results))


def runs_table(results: Sequence[DialectResult]) -> Table:
    """One line per dialect, case and run."""
    headers = [
        "dialect",
        "workload",
        "run",
        "workflows/s",
        "first start to last finish, s",
        "workflows/s from `ready.`",
        "worker start to `ready.`, s",
        "enqueue, s",
    ]
    rows = [
        [
            DIALECT_NAMES[result.dialect],
            case.label,
            str(index + 1),
            rate(r.per_second),
            f"{r.database_seconds:.3f}",
            rate(r.wall_per_second),
            f"{r.startup_seconds:.2f}",
            f"{r.enqueue_seconds:.2f}",
        ]
        for result in results
        for case, runs in result.runs.items()
        for index, r in enumerate(runs)
    ]
    return Table(headers, rows, "lllrrrrr")
