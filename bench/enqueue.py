"""Suite ``enqueue``: how fast one producer puts work into a queue (no worker runs).

Two ways, on the no-op workflow of bench/app.py: ``.delay()`` one call at a time from one
thread (each call writes one row: one round trip, one commit), and ``delay_many`` of 5,000
calls at once (one round trip, one commit for all of them).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.app import NOOP
from bench.common import DIALECT_NAMES, BenchError, Options, progress
from bench.databases import scratch_database
from bench.report import SuiteReport, Table, suite_report
from bench.stats import Summary, ms, rate
from bench.timing import Batch, time_batch
from bench.workers import producer_app, workflow_rows

BATCH = 5_000
"""Workflows per ``delay_many`` call."""

QUICK_BATCH = 500

TARGET_ONE_PER_S = 2_000
"""One-at-a-time ``.delay()`` calls per second the issue asks for."""

TARGET_BATCH_PER_S = 40_000
"""Workflows per second enqueued by ``delay_many`` the issue asks for."""


def batch_size(options: Options) -> int:
    """Workflows per ``delay_many`` call in this run."""
    return QUICK_BATCH if options.quick else BATCH


@dataclass(frozen=True)
class Round:
    """One round: ``.delay()`` calls back to back, then one ``delay_many``."""

    one: Batch
    """The one-at-a-time calls, each timed."""
    batch_seconds: float
    """Seconds of the ``delay_many`` call."""
    batch_size: int

    @property
    def batch_per_second(self) -> float:
        """Workflows enqueued per second by ``delay_many``."""
        return self.batch_size / self.batch_seconds


@dataclass(frozen=True)
class DialectResult:
    """Every round on one dialect."""

    dialect: str
    rounds: Sequence[Round]

    def across(self, pick: Callable[[Round], float]) -> Summary:
        """One per-round figure summarized over rounds."""
        return Summary.of([pick(r) for r in self.rounds])


def time_delay_many(call: Callable[[], Sequence[object]], size: int) -> float:
    """Seconds of one ``delay_many`` call, checking it returned a handle per workflow."""
    gc.collect()
    before = time.perf_counter()
    handles = call()
    seconds = time.perf_counter() - before
    if len(handles) != size:
        raise BenchError(f"delay_many of {size} returned {len(handles)} handles")
    return seconds


def run_dialect(dialect: str, options: Options) -> DialectResult:
    """Warm up, then the rounds, on a scratch database; then check every row was written."""
    sizes = options.sizes
    size = batch_size(options)
    calls: list[tuple[()]] = [()] * size
    with (
        scratch_database(dialect, options) as db,
        producer_app(db, options) as bench,
        workflow_rows(db, options, bench) as rows,
    ):
        noop = bench.noop
        written = 0
        # Untimed: psycopg prepares a statement on its 5th run; the batch statement too.
        for _ in range(sizes.warmup):
            noop.delay()
        warm = min(size, 100)
        for _ in range(2):
            noop.delay_many([()] * warm)
        written += sizes.warmup + 2 * warm
        rounds: list[Round] = []
        for index in range(sizes.rounds):
            one = time_batch(noop.delay, sizes.n)
            seconds = time_delay_many(lambda: noop.delay_many(calls), size)
            rounds.append(Round(one, seconds, size))
            written += sizes.n + size
            progress(f"{dialect}: {_round_line(index, rounds[-1])}")
        found = rows.by_status()
        if found != {"ENQUEUED": written}:
            raise BenchError(f"{dialect}: enqueued {written} {NOOP} workflows, found {found}")
    return DialectResult(dialect, rounds)


def _round_line(index: int, r: Round) -> str:
    return (
        f"enqueue round {index + 1}: .delay() {rate(r.one.calls_per_second)}/s "
        f"(median {ms(r.one.per_call.median)} ms, p95 {ms(r.one.per_call.p95)} ms), "
        f"delay_many({r.batch_size:,}) {rate(r.batch_per_second)} workflows/s"
    )


def run(options: Options) -> SuiteReport:
    """The suite: every requested dialect in turn, rendered as one report block."""
    results = [run_dialect(d, options) for d in options.dialects]
    return render(results, options)


# -- rendering ------------------------------------------------------------------------------


def render(results: Sequence[DialectResult], options: Options) -> SuiteReport:
    """The headline table, then the figures of every round."""
    return suite_report(
        "enqueue",
        "Enqueueing: results",
        options.quick,
        _method(options),
        summary_table(results),
        "Each round:",
        rounds_table(results),
    )


def _method(options: Options) -> str:
    s = options.sizes
    size = batch_size(options)
    return (
        f"The producer is one thread of the benchmark process, with no worker running; every "
        f"workflow is `{NOOP}` without arguments. After {s.warmup} untimed `.delay()` calls "
        f"and two untimed small `delay_many` calls, every round makes {s.n} `.delay()` calls "
        "back to back, timing each with `time.perf_counter` (calls/s = calls / wall time of "
        f"the {s.n}), then one `delay_many` of {size:,} calls (workflows/s = {size:,} / its "
        f"wall time, handles included). The table gives the median of {s.rounds} rounds, "
        "with the lowest and highest round; latencies are the median over rounds of each "
        "round's median and p95. Every row is counted afterwards."
    )


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def summary_table(results: Sequence[DialectResult]) -> Table:
    """Metrics down, dialects across."""
    size = results[0].rounds[0].batch_size
    rows: list[list[str]] = [
        ["**`.delay()` one at a time**, calls/s (lowest to highest round)"],
        [f"at least {TARGET_ONE_PER_S:,}/s (target)"],
        ["`.delay()` call, ms: median / p95"],
        [f"**`delay_many` of {size:,}**, workflows/s (lowest to highest round)"],
        [f"at least {TARGET_BATCH_PER_S:,}/s (target)"],
        ["`delay_many` call, ms (median)"],
    ]
    for result in results:
        one = result.across(lambda r: r.one.calls_per_second)
        many = result.across(lambda r: r.batch_per_second)
        cells = [
            f"**{rate(one.median)}** ({rate(one.minimum)} to {rate(one.maximum)})",
            _yes(one.median >= TARGET_ONE_PER_S),
            f"{ms(result.across(lambda r: r.one.per_call.median).median)} / "
            f"{ms(result.across(lambda r: r.one.per_call.p95).median)}",
            f"**{rate(many.median)}** ({rate(many.minimum)} to {rate(many.maximum)})",
            _yes(many.median >= TARGET_BATCH_PER_S),
            ms(result.across(lambda r: r.batch_seconds).median, 1),
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
        "`.delay()` calls/s",
        "`.delay()` ms: median / p95",
        "`delay_many` workflows/s",
        "`delay_many` ms",
    ]
    rows = [
        [
            DIALECT_NAMES[result.dialect],
            str(index + 1),
            rate(r.one.calls_per_second),
            f"{ms(r.one.per_call.median)} / {ms(r.one.per_call.p95)}",
            rate(r.batch_per_second),
            ms(r.batch_seconds, 1),
        ]
        for result in results
        for index, r in enumerate(result.rounds)
    ]
    return Table(headers, rows, "llrrrr")
