"""Suite ``direct``: workflows called directly in this process.

It answers two questions. What does one checkpointed step cost? (A workflow of 10 no-op steps
against one of none: the difference, divided by 10.) And how many workflows can one thread
call directly per second? For context it also times the bare driver on the same database,
taking turns with the workflows: one ``SELECT 1`` round trip, and one single-row ``INSERT``
with its commit, which is what one step checkpoint cannot go below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import psycopg

from bench.common import DIALECT_NAMES, Options, progress
from bench.databases import ScratchDatabase, scratch_database, sqlite_connect
from bench.report import SuiteReport, Table, suite_report
from bench.stats import Summary, ms, rate
from bench.timing import Batch, time_batch, time_interleaved
from taskflow import Taskflow

STEPS = 10
"""No-op steps in the stepped workflow."""

TARGET_MS_PER_STEP = 0.5
"""The per-step overhead taskflow aims to stay under on a 2-core machine with local Postgres."""


@dataclass(frozen=True)
class Workflows:
    """The benchmark app and its two workflows."""

    app: Taskflow
    zero: Callable[[], None]
    """A workflow with no steps: start, run, finish."""
    stepped: Callable[[], None]
    """The same with ``STEPS`` no-op steps."""


@contextmanager
def bench_app(db: ScratchDatabase, options: Options) -> Iterator[Workflows]:
    """An app on ``db``, migrated, with a no-op step and the two workflows; closed after."""
    app = Taskflow(
        "bench",
        database_url=db.url,
        app_version="bench",
        sqlite_synchronous=options.sqlite_synchronous,
    )

    @app.step(name="bench.noop")
    def noop() -> None:
        return None

    @app.workflow(name="bench.zero_steps")
    def zero_steps() -> None:
        return None

    @app.workflow(name="bench.ten_steps")
    def ten_steps() -> None:
        for _ in range(STEPS):
            noop()

    try:
        app.migrate()
        yield Workflows(app, zero_steps, ten_steps)
    finally:
        app.close()


@dataclass(frozen=True)
class Probes:
    """The bare driver on the benchmark's database, without taskflow: the floor under a step."""

    round_trip: Callable[[], object]
    """``SELECT 1``."""
    commit: Callable[[], object]
    """A one-row ``INSERT`` in autocommit mode: a round trip and a durable commit."""


@contextmanager
def postgres_probes(db: ScratchDatabase) -> Iterator[Probes]:
    """Probes on their own psycopg connection, statements prepared as taskflow's are."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, payload text NOT NULL)")

        def select() -> object:
            return conn.execute("SELECT 1", prepare=True).fetchone()

        def insert() -> object:
            return conn.execute(
                "INSERT INTO bench_floor (payload) VALUES (%s)", ("x",), prepare=True
            )

        yield Probes(select, insert)


@contextmanager
def sqlite_probes(db: ScratchDatabase, options: Options) -> Iterator[Probes]:
    """Probes on their own sqlite3 connection to the same file, with the same settings."""
    conn = sqlite_connect(db, options.sqlite_synchronous)
    try:
        conn.execute("CREATE TABLE bench_floor (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")

        def select() -> object:
            return conn.execute("SELECT 1").fetchone()

        def insert() -> object:
            return conn.execute("INSERT INTO bench_floor (payload) VALUES (?)", ("x",))

        yield Probes(select, insert)
    finally:
        conn.close()


def driver_probes(db: ScratchDatabase, options: Options) -> AbstractContextManager[Probes]:
    """The probes for ``db``'s dialect."""
    return postgres_probes(db) if db.dialect == "postgres" else sqlite_probes(db, options)


@dataclass(frozen=True)
class Round:
    """One round: interleaved calls of both workflows and both probes (seconds per call),
    then a batch of back-to-back 0-step calls."""

    zero: Summary
    stepped: Summary
    round_trip: Summary
    commit: Summary
    batch: Batch
    """Back-to-back 0-step calls, for throughput over wall time."""

    @property
    def per_step(self) -> float:
        """Seconds one step adds: the difference of the two medians, per step."""
        return (self.stepped.median - self.zero.median) / STEPS


def run_round(workflows: Workflows, probes: Probes, calls: int) -> Round:
    """``calls`` interleaved calls of each workflow and probe, then ``calls`` 0-step calls."""
    zero, stepped, round_trip, commit = time_interleaved(
        (workflows.zero, workflows.stepped, probes.round_trip, probes.commit), calls
    )
    return Round(zero, stepped, round_trip, commit, time_batch(workflows.zero, calls))


@dataclass(frozen=True)
class DialectResult:
    """Every round on one dialect."""

    dialect: str
    rounds: Sequence[Round]

    @property
    def per_step(self) -> Summary:
        """Per-step overhead across rounds (seconds)."""
        return Summary.of([r.per_step for r in self.rounds])

    def across(self, pick: Callable[[Round], float]) -> float:
        """The median over rounds of one per-round figure."""
        return Summary.of([pick(r) for r in self.rounds]).median


def run_dialect(dialect: str, options: Options) -> DialectResult:
    """Warm up, then run the rounds, on a scratch database."""
    sizes = options.sizes
    with (
        scratch_database(dialect, options) as db,
        bench_app(db, options) as workflows,
        driver_probes(db, options) as probes,
    ):
        # Enough calls for psycopg to prepare every statement (it does on the 5th run).
        time_interleaved(
            (workflows.zero, workflows.stepped, probes.round_trip, probes.commit), sizes.warmup
        )
        rounds: list[Round] = []
        for index in range(sizes.rounds):
            rounds.append(run_round(workflows, probes, sizes.n))
            progress(f"{dialect}: {_round_line(index, rounds[-1])}")
    return DialectResult(dialect, rounds)


def _round_line(index: int, r: Round) -> str:
    return (
        f"round {index + 1}: 0-step {ms(r.zero.median)} ms, "
        f"{STEPS}-step {ms(r.stepped.median)} ms, "
        f"{ms(r.per_step)} ms/step, {rate(r.batch.calls_per_second)} calls/s"
    )


def run(options: Options) -> SuiteReport:
    """The suite: every requested dialect in turn, rendered as one report block."""
    results = [run_dialect(d, options) for d in options.dialects]
    return render(results, options)


# -- rendering ------------------------------------------------------------------------------


def render(results: Sequence[DialectResult], options: Options) -> SuiteReport:
    """The headline table, then the figures of every round."""
    return suite_report(
        "direct",
        "Direct workflow calls: results",
        options.quick,
        _method(options),
        summary_table(results),
        "Each round:",
        rounds_table(results),
    )


def _method(options: Options) -> str:
    s = options.sizes
    return (
        f"After {s.warmup} untimed calls of each, every round calls in turn a workflow with "
        f"no steps, one with {STEPS} no-op steps and the two driver floors, {s.n} times "
        "over, timing each call with `time.perf_counter` (taking turns means outside load "
        f"hits all of them alike), then times a batch of {s.n} back-to-back 0-step calls. "
        f"Per-step overhead of a round = (median {STEPS}-step call - median 0-step call) / "
        f"{STEPS}. The table gives the median of {s.rounds} rounds; per-step overhead also "
        "with the lowest and highest round. Floors: the bare driver on the same database, "
        "without taskflow; the commit is what one step checkpoint cannot go below."
    )


def summary_table(results: Sequence[DialectResult]) -> Table:
    """Metrics down, dialects across."""
    rows: list[list[str]] = [
        ["**per-step overhead**, ms (lowest to highest round)"],
        [f"within the {TARGET_MS_PER_STEP} ms/step target"],
        ["per-step overhead above the commit floor, ms"],
        ["0-step workflow call, ms: median / p95"],
        [f"{STEPS}-step workflow call, ms: median / p95"],
        ["direct calls/s: 1 / median 0-step call"],
        ["direct calls/s: 0-step batch calls / wall time"],
        ["floor: `SELECT 1` round trip, ms (median)"],
        ["floor: one-row INSERT + commit, ms (median)"],
    ]
    for result in results:
        for row, cell in zip(rows, _summary_cells(result), strict=True):
            row.append(cell)
    headers = ["", *(DIALECT_NAMES[r.dialect] for r in results)]
    return Table(headers, rows, "l" + "r" * len(results))


def _summary_cells(result: DialectResult) -> list[str]:
    step = result.per_step
    return [
        f"**{ms(step.median)}** ({ms(step.minimum)} to {ms(step.maximum)})",
        "yes" if step.median * 1000 <= TARGET_MS_PER_STEP else "**no**",
        ms(result.across(lambda r: r.per_step - r.commit.median)),
        f"{ms(result.across(lambda r: r.zero.median))} / {ms(result.across(lambda r: r.zero.p95))}",
        f"{ms(result.across(lambda r: r.stepped.median))} / "
        f"{ms(result.across(lambda r: r.stepped.p95))}",
        rate(result.across(lambda r: 1 / r.zero.median)),
        rate(result.across(lambda r: r.batch.calls_per_second)),
        ms(result.across(lambda r: r.round_trip.median)),
        ms(result.across(lambda r: r.commit.median)),
    ]


def rounds_table(results: Sequence[DialectResult]) -> Table:
    """One line per dialect and round."""
    headers = [
        "dialect",
        "round",
        "0-step ms: median / p95",
        f"{STEPS}-step ms: median / p95",
        "ms per step",
        "commit floor, ms",
        "0-step calls/s (batch)",
    ]
    rows = [
        [
            DIALECT_NAMES[result.dialect],
            str(index + 1),
            f"{ms(r.zero.median)} / {ms(r.zero.p95)}",
            f"{ms(r.stepped.median)} / {ms(r.stepped.p95)}",
            ms(r.per_step),
            ms(r.commit.median),
            rate(r.batch.calls_per_second),
        ]
        for result in results
        for index, r in enumerate(result.rounds)
    ]
    return Table(headers, rows, "llrrrrr")
