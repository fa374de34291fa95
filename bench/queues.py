"""Suite ``queues``: what flow control costs a worker. Throughput of queues with a
concurrency limit, a rate limit and per-partition limits, each against an unlimited queue
measured in the same suite (same machine, same moment), and claim cost with many finished
workflows in the table.

Every run is a run of the throughput suite (bench/throughput.py) on one queue: enqueue N no-op
workflows onto it first, ``ANALYZE`` on Postgres, start ``taskflow worker -c 2 -Q <queue>``,
wait until every workflow is SUCCESS, and take N / (max(finished_at) - min(started_at)) from
the database. The queues are declared in bench/app.py:

- ``bench.unlimited``: no limit, the baseline;
- ``bench.concurrency``: ``concurrency=50``, more than the worker's 16 slots, so it never binds;
- ``bench.rate_unbound``: ``rate_limit="20000/s"``, above what one worker reaches;
- ``bench.partitioned``: ``concurrency=10`` per partition key, the workflows given 1,000 keys
  in turn (workflow i gets key i mod 1,000), so no key ever has 10 running;
- ``bench.rate``: ``rate_limit="2000/s"``, which binds (a no-op worker runs about 6,000/s):
  the figures are the achieved rate against the limit, and the most starts within any one
  second, which the limit says is at most 2,000.

Claim cost with finished workflows present: the suite uses two scratch databases of the
dialect. On the second, once per suite run, one SQL statement inserts finished (SUCCESS)
workflows (1,000,000, half on each of ``bench.unlimited`` and ``bench.concurrency``, dated two
days earlier), then ``VACUUM ANALYZE`` on Postgres (``ANALYZE`` on SQLite); the unlimited and
the ``concurrency=50`` queue run there too, each against its figure on the empty first
database. Between runs there only the run's own workflows are deleted (then ``VACUUM
ANALYZE`` again, as autovacuum would), and every figure reads only the run's rows
(``created_at`` from the run's start on).

The rounds take turns (one run of every case, on both databases, per round), so a change in
the machine's speed during the suite hits every case alike instead of skewing one ratio.
``--rounds`` sets how many (default 3); ``--quick`` runs one round of 300 workflows per case,
with 10,000 finished workflows and 100 partition keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg

from bench.app import (
    CONCURRENCY_QUEUE,
    NOOP,
    PARTITIONED_QUEUE,
    QUEUE_LIMITS,
    RATE_QUEUE,
    UNBOUND_RATE_QUEUE,
    UNLIMITED_QUEUE,
    BenchApp,
)
from bench.common import DIALECT_NAMES, BenchError, Options, progress
from bench.databases import ScratchDatabase, scratch_database, sqlite_connect
from bench.report import SuiteReport, Table, suite_report
from bench.stats import Summary, rate
from bench.throughput import ENQUEUE_CHUNK, POLL_INTERVAL, wait_until_done
from bench.workers import WorkflowRows, producer_app, running_worker, worker_command_shown
from taskflow.queues import parse_rate_limit

SIZE = 20_000
"""Workflows per run."""

QUICK_SIZE = 300

PARTITION_KEYS = 1_000
"""Partition keys the partitioned queue's workflows are spread over, in turn."""

QUICK_PARTITION_KEYS = 100

FINISHED_ROWS = 1_000_000
"""Finished workflows present for the second part (inserted once per suite run)."""

QUICK_FINISHED_ROWS = 10_000

HISTORY_AGE_MS = 2 * 24 * 3600 * 1000
"""How long before the suite the finished workflows were created: far enough back that no
figure of a run (which reads rows created from the run's start on) can include them."""

NOT_BINDING_TARGET = 0.80
"""A limit that does not bind may cost at most 20% of the unlimited queue's throughput."""

UNBOUND_CASES = (UNLIMITED_QUEUE, CONCURRENCY_QUEUE, UNBOUND_RATE_QUEUE, PARTITIONED_QUEUE)
"""Queues whose limit does not bind, baseline first."""

HISTORY_QUEUES = (UNLIMITED_QUEUE, CONCURRENCY_QUEUE)
"""Queues measured again with the finished workflows present (which are split over them)."""


@dataclass(frozen=True)
class Case:
    """One workload: a queue, on an empty table or with the finished workflows present."""

    queue: str
    history: bool = False

    @property
    def label(self) -> str:
        """How the report names it."""
        text = f"`{self.queue}` ({limits_shown(self.queue)})"
        return f"{text}, finished rows present" if self.history else text


def limits_shown(queue: str) -> str:
    """The queue's declaration as bench/app.py writes it (``concurrency=50``)."""
    limits = QUEUE_LIMITS[queue]
    if not limits:
        return "no limit"
    parts = [f'{k}="{v}"' if isinstance(v, str) else f"{k}={v}" for k, v in limits.items()]
    return ", ".join(parts)


def rate_limit_per_second(queue: str) -> float:
    """The starts per second the queue's rate limit allows."""
    limit = parse_rate_limit(QUEUE_LIMITS[queue]["rate_limit"])
    assert limit is not None
    return limit.count / limit.per


def rate_limit_period_ms(queue: str) -> int:
    """The length of the queue's rate-limit window."""
    limit = parse_rate_limit(QUEUE_LIMITS[queue]["rate_limit"])
    assert limit is not None
    return int(limit.per * 1000)


def rounds(options: Options) -> int:
    """Rounds of this run: ``--rounds`` (default 3), but one with ``--quick``, whose point is
    that every case runs (each run starts and stops a worker, about 1.5 s on Postgres)."""
    return 1 if options.quick else options.throughput_runs


def empty_cases() -> list[Case]:
    """The first part's cases, in the order each round runs them."""
    return [Case(q) for q in (*UNBOUND_CASES, RATE_QUEUE)]


def history_cases() -> list[Case]:
    """The second part's cases."""
    return [Case(q, history=True) for q in HISTORY_QUEUES]


@dataclass(frozen=True)
class Run:
    """One run of one case."""

    n: int
    database_seconds: float
    """max(finished_at) - min(started_at)."""
    wall_seconds: float
    """From the worker's ``ready.`` to seeing no work left."""
    startup_seconds: float
    enqueue_seconds: float
    most_in_window: int | None = None
    """Rate-limited queue only: the most starts within any one window of the limit's length,
    which the limit says is at most its count."""

    @property
    def per_second(self) -> float:
        """Workflows per second, from the database's timestamps."""
        return self.n / self.database_seconds

    @property
    def wall_per_second(self) -> float:
        """Workflows per second over the wall time from ``ready.``."""
        return self.n / self.wall_seconds


@dataclass
class DialectResult:
    """Every run of every case on one dialect."""

    dialect: str
    runs: dict[Case, list[Run]] = field(default_factory=dict)
    concurrency: str = "?"
    """The worker banner's concurrency line."""
    finished_rows: int = 0
    build_seconds: float = 0.0
    """Inserting the finished workflows and giving the planner their statistics."""

    def rates(self, case: Case) -> Summary:
        """Workflows/s (database timestamps) over the runs of ``case``."""
        return Summary.of([r.per_second for r in self.runs[case]])

    def ratio(self, case: Case, baseline: Case) -> float:
        """Median workflows/s of ``case`` over that of ``baseline``."""
        return self.rates(case).median / self.rates(baseline).median

    def most_in_window(self, case: Case) -> int | None:
        """The most starts in one window of the rate limit, over every run of ``case``."""
        found = [r.most_in_window for r in self.runs[case] if r.most_in_window is not None]
        return max(found) if found else None


class QueueRows(WorkflowRows):
    """The workflow table, where finished workflows of the past may sit next to a run's own:
    every figure of a run reads only the rows created from the run's start on."""

    history = False
    """True once finished workflows were inserted: clearing a run then keeps them."""

    def run_statuses(self, since: int) -> dict[str, int]:
        """How many of the run's workflows are in each status."""
        rows = self._query(
            "SELECT status, count(*) FROM {w} WHERE created_at >= %s GROUP BY status", [since]
        )
        return {str(status): int(count) for status, count in rows}

    def run_span(self, since: int) -> tuple[int, int, int]:
        """``(count, first started_at, last finished_at)`` of the run's workflows."""
        rows = self._query(
            "SELECT count(*), min(started_at), max(finished_at) FROM {w} WHERE created_at >= %s",
            [since],
        )
        count, first, last = rows[0]
        if first is None or last is None:
            raise BenchError(f"{self.dialect}: no workflow has started and finished")
        return int(count), int(first), int(last)

    def start_times(self, since: int) -> list[int]:
        """``started_at`` of every one of the run's workflows, in order."""
        rows = self._query(
            "SELECT started_at FROM {w} WHERE created_at >= %s AND started_at IS NOT NULL "
            "ORDER BY started_at",
            [since],
        )
        return [int(started) for (started,) in rows]

    def add_history(self, n: int, before: int) -> None:
        """Insert ``n`` SUCCESS workflows of ``bench.noop``, alternately on each of
        :data:`HISTORY_QUEUES`, created one millisecond apart up to ``before``."""
        first, second = HISTORY_QUEUES
        # One statement: a row generator on each dialect. "& 1" rather than "% 2": the
        # template goes through psycopg, where a bare % would be a parameter marker.
        generator = (
            "generate_series(1, %s) AS g(x)"
            if self.dialect == "postgres"
            else "(WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r "
            "WHERE x < %s) SELECT x FROM r) AS g"
        )
        base = before - n - 3
        self._query(
            "INSERT INTO {w} (id, name, status, queue, inputs, output, executor_id, "
            "app_version, attempts, created_at, updated_at, started_at, finished_at) "
            "SELECT 'finished-' || x, %s, 'SUCCESS', "
            "CASE WHEN (x & 1) = 0 THEN %s ELSE %s END, "
            "'{{\"args\":[],\"kwargs\":{{}}}}', 'null', 'bench-history', 'bench', 1, "
            "%s + x, %s + x + 2, %s + x + 1, %s + x + 2 FROM " + generator,
            [NOOP, first, second, base, base, base, base, n],
        )
        self.history = True
        self.tidy()

    def tidy(self) -> None:
        """Postgres: ``VACUUM ANALYZE``, as autovacuum does after many inserts or deletes
        (dead index entries cleaned up, statistics current). SQLite: ``ANALYZE``."""
        self._query("VACUUM ANALYZE {w}" if self._pg is not None else "ANALYZE")

    def clear_run(self, since: int) -> None:
        """Delete the run's workflows (everything, while no finished workflows were added)."""
        if not self.history:
            self.clear()
            return
        self._query("DELETE FROM {w} WHERE created_at >= %s", [since])
        self.tidy()


def now_ms() -> int:
    """The wall clock in milliseconds, the clock taskflow stamps rows with."""
    return int(time.time() * 1000)


def fill_queue(
    db: ScratchDatabase, options: Options, bench: BenchApp, queue: str, n: int, keys: int
) -> float:
    """Enqueue ``n`` no-op workflows onto ``queue``; return the seconds it took."""
    started = time.perf_counter()
    if queue == PARTITIONED_QUEUE:
        fill_partitioned(db, options, bench, n, keys)
    else:
        left = n
        while left:
            chunk = min(left, ENQUEUE_CHUNK)
            bench.noop.delay_many([()] * chunk, queue=queue)
            left -= chunk
    return time.perf_counter() - started


def fill_partitioned(
    db: ScratchDatabase, options: Options, bench: BenchApp, n: int, keys: int
) -> None:
    """Enqueue ``n`` workflows on the partitioned queue, workflow i with key i mod ``keys``.

    ``delay_many`` gives one key to its whole batch, so keys taking turns in claim order
    (FIFO) means one ``apply_async`` per workflow; they run inside one transaction per
    :data:`ENQUEUE_CHUNK` workflows on a connection of the benchmark's own (``connection=``),
    so filling the queue costs a round trip per workflow but not a commit."""
    wf = bench.noop

    def enqueue(connection: object, start: int, stop: int) -> None:
        for i in range(start, stop):
            wf.apply_async(
                queue=PARTITIONED_QUEUE, partition_key=f"key-{i % keys}", connection=connection
            )

    chunks = [(s, min(n, s + ENQUEUE_CHUNK)) for s in range(0, n, ENQUEUE_CHUNK)]
    if db.dialect == "postgres":
        with psycopg.connect(db.url) as pg:
            for start, stop in chunks:
                enqueue(pg, start, stop)
                pg.commit()
        return
    lite = sqlite_connect(db, options.sqlite_synchronous)
    try:
        for start, stop in chunks:
            lite.execute("BEGIN IMMEDIATE")
            enqueue(lite, start, stop)
            lite.execute("COMMIT")
    finally:
        lite.close()


@dataclass(frozen=True)
class Target:
    """One scratch database, the producer's app on it and a look at its rows."""

    db: ScratchDatabase
    bench: BenchApp
    rows: QueueRows


@contextmanager
def scratch_target(dialect: str, options: Options) -> Iterator[Target]:
    """A new scratch database, migrated, with the app and the rows reader; all closed and
    removed afterwards."""
    with scratch_database(dialect, options) as db, producer_app(db, options) as bench:
        rows = QueueRows(db, options, bench.app.conf.database_schema)
        try:
            yield Target(db, bench, rows)
        finally:
            rows.close()


def run_case(target: Target, options: Options, case: Case, n: int, keys: int) -> tuple[Run, str]:
    """One run of ``case``, as a throughput run (see bench/throughput.py) on its queue.
    Returns the run and the worker's concurrency line."""
    db, bench, rows = target.db, target.bench, target.rows
    since = now_ms()
    enqueue_seconds = fill_queue(db, options, bench, case.queue, n, keys)
    rows.analyze()
    with running_worker(db, options, queues=[case.queue]) as worker:
        ready = worker.wait_ready()
        done = wait_until_done(rows, worker, n)
    found = rows.run_statuses(since)
    if found != {"SUCCESS": n}:
        raise BenchError(
            f"{db.dialect}: {case.queue}: expected {n:,} SUCCESS, found {found}; "
            f"{rows.first_error() or 'no error recorded'}"
        )
    count, first_start, last_finish = rows.run_span(since)
    if count != n:
        raise BenchError(f"{db.dialect}: expected {n:,} workflows, found {count:,}")
    # Timestamps are whole milliseconds: a run shorter than 1 ms cannot be measured.
    database_seconds = max(last_finish - first_start, 1) / 1000
    most: int | None = None
    if case.queue == RATE_QUEUE:
        most = most_in_window(rows.start_times(since), rate_limit_period_ms(RATE_QUEUE))
    run = Run(n, database_seconds, done - ready, worker.startup, enqueue_seconds, most)
    rows.clear_run(since)
    return run, worker.concurrency or "?"


def most_in_window(starts: Sequence[int], period: int) -> int:
    """The most ``starts`` (sorted, in ms) within any ``period`` ms: [t, t + period)."""
    most, first = 0, 0
    for last, stamp in enumerate(starts):
        while starts[first] <= stamp - period:
            first += 1
        most = max(most, last - first + 1)
    return most


def run_dialect(dialect: str, options: Options) -> DialectResult:
    """Both parts, on two scratch databases: one left empty between runs, one holding the
    finished workflows (inserted first). Each round runs every case once, in turn."""
    n = QUICK_SIZE if options.quick else SIZE
    keys = QUICK_PARTITION_KEYS if options.quick else PARTITION_KEYS
    history_rows = QUICK_FINISHED_ROWS if options.quick else FINISHED_ROWS
    result = DialectResult(dialect)
    with scratch_target(dialect, options) as empty, scratch_target(dialect, options) as full:
        progress(f"{dialect}: inserting {history_rows:,} finished workflows")
        started = time.perf_counter()
        full.rows.add_history(history_rows, now_ms() - HISTORY_AGE_MS)
        result.build_seconds = time.perf_counter() - started
        result.finished_rows = history_rows
        progress(f"{dialect}: finished workflows in place in {result.build_seconds:.1f} s")
        plan = [(empty, c) for c in empty_cases()] + [(full, c) for c in history_cases()]
        for index in range(rounds(options)):
            for target, case in plan:
                run, result.concurrency = run_case(target, options, case, n, keys)
                result.runs.setdefault(case, []).append(run)
                progress(f"{dialect}: {case.label}, round {index + 1}: {_run_line(run)}")
    return result


def _run_line(r: Run) -> str:
    most = (
        ""
        if r.most_in_window is None
        else f"; at most {r.most_in_window:,} starts within one window"
    )
    return (
        f"{rate(r.per_second)} workflows/s ({r.database_seconds:.3f} s first start to last "
        f"finish){most}; worker ready in {r.startup_seconds:.2f} s; queue filled in "
        f"{r.enqueue_seconds:.2f} s"
    )


def run(options: Options) -> SuiteReport:
    """The suite: every requested dialect in turn, rendered as one report block."""
    results = [run_dialect(d, options) for d in options.dialects]
    return render(results, options)


# -- rendering ------------------------------------------------------------------------------


def render(results: Sequence[DialectResult], options: Options) -> SuiteReport:
    """The headline table, then the figures of every run."""
    return suite_report(
        "queues",
        "Queues with flow control: results",
        options.quick,
        _method(results, options),
        summary_table(results),
        "Each run:",
        runs_table(results),
    )


def _method(results: Sequence[DialectResult], options: Options) -> str:
    n = QUICK_SIZE if options.quick else SIZE
    keys = QUICK_PARTITION_KEYS if options.quick else PARTITION_KEYS
    concurrency = ", ".join(
        f"{DIALECT_NAMES[r.dialect]}: {r.concurrency}" for r in results if r.concurrency != "?"
    )
    finished = ", ".join(f"{DIALECT_NAMES[r.dialect]}: {r.finished_rows:,}" for r in results)
    return (
        f"Each run is a run of the throughput suite on one queue: enqueue {n:,} no-op "
        f"workflows onto it (`delay_many`, {ENQUEUE_CHUNK:,} at a time; on the partitioned "
        f"queue one `apply_async(partition_key=...)` per workflow, keys `key-0` to "
        f"`key-{keys - 1}` in turn, committed every {ENQUEUE_CHUNK:,}), `ANALYZE` on "
        f"PostgreSQL, start `{worker_command_shown(queues=['<queue>'])}` (concurrency as its "
        f"banner states it: {concurrency or 'unknown'}), wait until all are SUCCESS "
        f"(polled every {POLL_INTERVAL * 1000:.0f} ms). **Workflows/s = N / (last "
        "`finished_at` - first `started_at`)** from the database. Every round runs each "
        f"case once, in turn; {rounds(options)} round(s); the table gives the median run "
        "with the lowest and highest, and **ratio** = median of the case / median of the "
        "unlimited queue. The limits of the first three limited queues do "
        "not bind (the worker has 16 slots; 20,000/s is above what it reaches); "
        f'`rate_limit="2000/s"` binds, and **rate accuracy** = achieved workflows/s / '
        f"{rate(rate_limit_per_second(RATE_QUEUE))}. A sliding window lets a window's worth "
        "start at once, so a limit held exactly still gives more than the limit over a run: "
        "the run's span is every window but the last plus the time the last window's starts "
        "take. Hence also the **most starts within any 1 s** (from every `started_at`, the "
        "window [t, t + 1 s) at every t), which the limit says is at most 2,000. **Finished "
        "rows present**: these cases run on a second scratch database where, once per suite "
        f"run before the first round, one SQL statement inserted finished (SUCCESS) workflows "
        f"({finished}; half on each of the two queues measured there) dated two days "
        "earlier, then `VACUUM ANALYZE` on PostgreSQL, `ANALYZE` on SQLite; the ratio is to "
        "the same queue on the empty database, in the same rounds. Between runs there only "
        "the run's workflows are deleted (then the same again), and every run's figures read "
        "only its own rows."
    )


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _cell(s: Summary) -> str:
    return f"**{rate(s.median)}** ({rate(s.minimum)} to {rate(s.maximum)})"


def summary_table(results: Sequence[DialectResult]) -> Table:
    """Metrics down, dialects across."""
    rows: list[list[str]] = []

    def add(label: str, cells: Sequence[str]) -> None:
        rows.append([label, *cells])

    baseline = Case(UNLIMITED_QUEUE)
    add(
        f"**{baseline.label}**, the baseline: workflows/s (lowest to highest run)",
        [_cell(r.rates(baseline)) for r in results],
    )
    for queue in UNBOUND_CASES[1:]:
        case = Case(queue)
        add(f"**{case.label}**: workflows/s", [_cell(r.rates(case)) for r in results])
        add("ratio to the unlimited queue", [f"{r.ratio(case, baseline):.2f}" for r in results])
        add(
            f"at least {NOT_BINDING_TARGET:.2f} (target: a limit that does not bind costs at "
            "most 20%)",
            [_yes(r.ratio(case, baseline) >= NOT_BINDING_TARGET) for r in results],
        )
    bound = Case(RATE_QUEUE)
    limit = rate_limit_per_second(RATE_QUEUE)
    add(
        f"**{bound.label}**, binding: achieved workflows/s",
        [_cell(r.rates(bound)) for r in results],
    )
    add(
        f"rate accuracy: achieved / {rate(limit)}",
        [f"{r.rates(bound).median / limit:.2f}" for r in results],
    )
    add(
        f"most starts within any {rate_limit_period_ms(RATE_QUEUE) / 1000:g} s, any run "
        f"(the limit: {QUEUE_LIMITS[RATE_QUEUE]['rate_limit']})",
        [_maybe_count(r.most_in_window(bound)) for r in results],
    )
    for queue in HISTORY_QUEUES:
        case, empty = Case(queue, history=True), Case(queue)
        add(
            f"**{case.label}**: workflows/s",
            [_cell(r.rates(case)) for r in results],
        )
        add(
            "ratio to the same queue on the empty database",
            [f"{r.ratio(case, empty):.2f}" for r in results],
        )
    add(
        "finished rows present; seconds to insert them and update statistics",
        [f"{r.finished_rows:,}; {r.build_seconds:.1f}" for r in results],
    )
    headers = ["", *(DIALECT_NAMES[r.dialect] for r in results)]
    return Table(headers, rows, "l" + "r" * len(results))


def _maybe_count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def runs_table(results: Sequence[DialectResult]) -> Table:
    """One line per dialect, case and run."""
    headers = [
        "dialect",
        "queue",
        "round",
        "workflows/s",
        "first start to last finish, s",
        "workflows/s from `ready.`",
        "worker start to `ready.`, s",
        "enqueue, s",
    ]
    body = [
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
    return Table(headers, body, "lllrrrrr")
