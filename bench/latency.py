"""Suite ``latency``: how long one workflow waits for an idle worker, and how long until its
producer sees it done.

An idle ``taskflow worker -c 2``; then, one at a time, the benchmark waits a random 5-50 ms,
enqueues one no-op workflow with ``.delay()`` and polls ``handle.status`` in a tight loop until
it is SUCCESS. Three figures per workflow: enqueue-to-start (``started_at - created_at``) and
enqueue-to-done (``finished_at - created_at``), both from the row (integer milliseconds, the
same machine's clock), and the producer's wall time from just before ``.delay()`` to seeing
SUCCESS (``time.perf_counter``).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.app import NOOP, BenchApp
from bench.common import DIALECT_NAMES, BenchError, Options, progress
from bench.databases import ScratchDatabase, scratch_database
from bench.report import SuiteReport, Table, suite_report
from bench.stats import Summary, ms
from bench.workers import (
    WorkerProcess,
    WorkflowRows,
    producer_app,
    running_worker,
    worker_command_shown,
    workflow_rows,
)
from taskflow import Status, WorkflowHandle

SAMPLES = 200
"""Workflows timed per round."""

QUICK_SAMPLES = 20

GAP_SECONDS = (0.005, 0.050)
"""The random wait before each enqueue (uniform)."""

SETTLE_SECONDS = 0.5
"""Idle time after ``ready.`` before the first workflow, so start-up work is over."""

WAIT_TIMEOUT = 30.0
"""Seconds one workflow may take before the run fails."""

TARGET_DONE_MEDIAN_MS = 5.0
TARGET_DONE_P95_MS = 15.0


def samples(options: Options) -> int:
    """Workflows timed per round in this run."""
    return QUICK_SAMPLES if options.quick else SAMPLES


@dataclass(frozen=True)
class Round:
    """One round (one worker), every figure in seconds."""

    to_start: Summary
    """``started_at - created_at`` (database, 1 ms resolution)."""
    to_done: Summary
    """``finished_at - created_at`` (database, 1 ms resolution)."""
    wall: Summary
    """Producer: before ``.delay()`` to seeing SUCCESS."""
    delay_call: Summary
    """The ``.delay()`` call alone."""
    polls: Summary
    """Status reads per workflow in the producer's loop."""


@dataclass(frozen=True)
class DialectResult:
    """Every round on one dialect."""

    dialect: str
    rounds: Sequence[Round]

    def across(self, pick: Callable[[Round], float]) -> float:
        """The median over rounds of one per-round figure."""
        return Summary.of([pick(r) for r in self.rounds]).median


def wait_for_success(handle: WorkflowHandle[None], worker: WorkerProcess) -> int:
    """Read the status in a tight loop until SUCCESS; return how many reads it took."""
    workflow_id = handle.id
    deadline = time.perf_counter() + WAIT_TIMEOUT
    polls = 0
    while True:
        status = handle.status
        polls += 1
        if status is Status.SUCCESS:
            return polls
        if status.is_finished:
            raise BenchError(f"workflow {workflow_id} ended {status}: {handle.info().error}")
        if polls % 1000 == 0:
            worker.check_alive()
            if time.perf_counter() > deadline:
                raise BenchError(
                    f"workflow {workflow_id} not done after {WAIT_TIMEOUT:.0f} s (status "
                    f"{status}); the worker's log ends with:\n{worker.tail()}"
                )


def run_round(
    db: ScratchDatabase,
    options: Options,
    bench: BenchApp,
    rows: WorkflowRows,
    count: int,
    rng: random.Random,
) -> Round:
    """A new idle worker; ``warmup`` untimed workflows, then ``count`` timed ones."""
    noop = bench.noop
    perf = time.perf_counter
    ids: list[str] = []
    wall: list[float] = []
    calls: list[float] = []
    polls: list[float] = []
    with running_worker(db, options) as worker:
        worker.wait_ready()
        time.sleep(SETTLE_SECONDS)
        # Untimed: the children connect on their first workflow, statements get prepared.
        for _ in range(options.sizes.warmup):
            wait_for_success(noop.delay(), worker)
        gc.collect()
        for _ in range(count):
            time.sleep(rng.uniform(*GAP_SECONDS))
            before = perf()
            handle = noop.delay()
            enqueued = perf()
            reads = wait_for_success(handle, worker)
            wall.append(perf() - before)
            calls.append(enqueued - before)
            polls.append(reads)
            ids.append(handle.id)
    times = rows.times(ids)
    if len(times) != count:
        raise BenchError(f"{db.dialect}: timed {count} workflows, found {len(times)} rows")
    rows.clear()
    to_start = [(started - created) / 1000 for created, started, _ in times.values()]
    to_done = [(finished - created) / 1000 for created, _, finished in times.values()]
    return Round(
        Summary.of(to_start),
        Summary.of(to_done),
        Summary.of(wall),
        Summary.of(calls),
        Summary.of(polls),
    )


def run_dialect(dialect: str, options: Options) -> DialectResult:
    """``rounds`` rounds, each with its own worker, on one scratch database."""
    rounds: list[Round] = []
    with (
        scratch_database(dialect, options) as db,
        producer_app(db, options) as bench,
        workflow_rows(db, options, bench) as rows,
    ):
        for index in range(options.sizes.rounds):
            rng = random.Random(index)  # the same waits on every dialect and every run
            rounds.append(run_round(db, options, bench, rows, samples(options), rng))
            progress(f"{dialect}: {_round_line(index, rounds[-1])}")
    return DialectResult(dialect, rounds)


def _round_line(index: int, r: Round) -> str:
    return (
        f"latency round {index + 1}: enqueue-to-done {ms(r.to_done.median, 0)} / "
        f"{ms(r.to_done.p95, 0)} ms (database, median / p95), producer wall "
        f"{ms(r.wall.median)} / {ms(r.wall.p95)} ms, enqueue-to-start "
        f"{ms(r.to_start.median, 0)} / {ms(r.to_start.p95, 0)} ms"
    )


def run(options: Options) -> SuiteReport:
    """The suite: every requested dialect in turn, rendered as one report block."""
    results = [run_dialect(d, options) for d in options.dialects]
    return render(results, options)


# -- rendering ------------------------------------------------------------------------------


def render(results: Sequence[DialectResult], options: Options) -> SuiteReport:
    """The headline table, then the figures of every round."""
    return suite_report(
        "latency",
        "Enqueue-to-start and enqueue-to-done latency: results",
        options.quick,
        _method(options),
        summary_table(results),
        "Each round:",
        rounds_table(results),
    )


def _method(options: Options) -> str:
    s = options.sizes
    low, high = (round(x * 1000) for x in GAP_SECONDS)
    return (
        f"Every round starts a new `{worker_command_shown()}` and waits for its `ready.` plus "
        f"{SETTLE_SECONDS * 1000:.0f} ms; after {s.warmup} untimed workflows, {samples(options)} "
        f"times: wait a random {low}-{high} ms, enqueue one `{NOOP}` with `.delay()`, then "
        "read `handle.status` in a tight loop until it is SUCCESS. **Enqueue-to-start** = "
        "`started_at - created_at` and **enqueue-to-done** = `finished_at - created_at`, from "
        "the row (whole milliseconds of the same clock, so each is +-1 ms); **producer wall "
        "time** = `time.perf_counter` from just before `.delay()` to seeing SUCCESS (the "
        "status reads are part of it). The table gives the median over "
        f"{s.rounds} rounds of each round's median and p95."
    )


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def summary_table(results: Sequence[DialectResult]) -> Table:
    """Metrics down, dialects across."""
    rows: list[list[str]] = [
        ["**enqueue-to-done**, ms (database): median / p95"],
        [
            f"median at most {TARGET_DONE_MEDIAN_MS:.0f} ms and p95 at most "
            f"{TARGET_DONE_P95_MS:.0f} ms (target, database figures)"
        ],
        ["**producer wall time, `.delay()` to seeing SUCCESS**, ms: median / p95"],
        ["median and p95 within the same target, producer wall time"],
        ["enqueue-to-start, ms (database): median / p95"],
        ["the `.delay()` call alone, ms: median / p95"],
        ["status reads per workflow while waiting (median)"],
    ]
    for result in results:
        done_median = result.across(lambda r: r.to_done.median)
        done_p95 = result.across(lambda r: r.to_done.p95)
        wall_median = result.across(lambda r: r.wall.median)
        wall_p95 = result.across(lambda r: r.wall.p95)
        cells = [
            f"**{ms(done_median, 1)} / {ms(done_p95, 1)}**",
            _yes(
                done_median * 1000 <= TARGET_DONE_MEDIAN_MS
                and done_p95 * 1000 <= TARGET_DONE_P95_MS
            ),
            f"**{ms(wall_median)} / {ms(wall_p95)}**",
            _yes(
                wall_median * 1000 <= TARGET_DONE_MEDIAN_MS
                and wall_p95 * 1000 <= TARGET_DONE_P95_MS
            ),
            f"{ms(result.across(lambda r: r.to_start.median), 1)} / "
            f"{ms(result.across(lambda r: r.to_start.p95), 1)}",
            f"{ms(result.across(lambda r: r.delay_call.median))} / "
            f"{ms(result.across(lambda r: r.delay_call.p95))}",
            f"{result.across(lambda r: r.polls.median):,.0f}",
        ]
        for row, cell in zip(rows, cells, strict=True):
            row.append(cell)
    headers = ["", *(DIALECT_NAMES[r.dialect] for r in results)]
    return Table(headers, rows, "l" + "r" * len(results))


def rounds_table(results: Sequence[DialectResult]) -> Table:
    """One line per dialect and round."""
    headers = [
        "dialect",
        "round",
        "enqueue-to-done ms: median / p95",
        "producer wall ms: median / p95",
        "enqueue-to-start ms: median / p95",
        "`.delay()` ms: median / p95",
    ]
    rows = [
        [
            DIALECT_NAMES[result.dialect],
            str(index + 1),
            f"{ms(r.to_done.median, 1)} / {ms(r.to_done.p95, 1)}",
            f"{ms(r.wall.median)} / {ms(r.wall.p95)}",
            f"{ms(r.to_start.median, 1)} / {ms(r.to_start.p95, 1)}",
            f"{ms(r.delay_call.median)} / {ms(r.delay_call.p95)}",
        ]
        for result in results
        for index, r in enumerate(result.rounds)
    ]
    return Table(headers, rows, "llrrrr")
