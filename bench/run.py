"""``python3 -m bench``: parse the options, run the suites, print and write the report."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import beat, direct, durable, enqueue, latency, listing, queues, retention, throughput
from bench.common import (
    DEFAULT_OUTPUT,
    DEFAULT_POSTGRES_URL,
    DIALECTS,
    FULL,
    POSTGRES_URL_ENV,
    QUICK,
    THROUGHPUT_RUNS,
    BenchError,
    Options,
    Sizes,
    default_postgres_url,
    progress,
)
from bench.environment import busy, describe, load_average
from bench.report import SuiteReport, write_report


@dataclass(frozen=True)
class Suite:
    """A named benchmark: a function from the options to its report block."""

    name: str
    help: str
    run: Callable[[Options], SuiteReport]


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "direct",
            "per-step overhead and direct workflow calls per second",
            direct.run,
        ),
        Suite(
            "enqueue",
            ".delay() one at a time and delay_many of 5,000, per second",
            enqueue.run,
        ),
        Suite(
            "throughput",
            "workflows per second through `taskflow worker -c 2` with a full queue",
            throughput.run,
        ),
        Suite(
            "latency",
            "enqueue-to-start and enqueue-to-done on an idle `taskflow worker -c 2`",
            latency.run,
        ),
        Suite(
            "queues",
            "throughput of queues with concurrency, rate and partition limits against an "
            "unlimited queue, and with 1,000,000 finished workflows in the table",
            queues.run,
        ),
        Suite(
            "durable",
            "send-to-recv latency between two running workflows, and the rows, bytes and "
            "CPU of 10,000 parked (sleeping) workflows",
            durable.run,
        ),
        Suite(
            "listing",
            "one filtered page of list_workflows (each filter, and some together) with "
            "1,000,000 workflows in the table",
            listing.run,
        ),
        Suite(
            "retention",
            "claim latency of a running worker while 1,000,000 finished workflows are pruned "
            "(PostgreSQL only), and pruning throughput",
            retention.run,
        ),
        Suite(
            "beat",
            "how late a per-second schedule's fires land on an idle `taskflow worker -c 2 -B`, "
            "and how long a standby beat takes to replace a leader killed with SIGKILL",
            beat.run,
        ),
    )
}
"""Every suite, in the order they run and appear in the report."""


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python3 -m bench",
        description=(
            "Benchmark taskflow on scratch databases (a new Postgres database and a temporary "
            "SQLite file, both removed afterwards) and write the results to "
            f"{_shown(DEFAULT_OUTPUT)}."
        ),
    )
    p.add_argument(
        "--suite",
        action="append",
        choices=list(SUITES),
        help="run only this suite (repeatable; default: all): "
        + "; ".join(f"{s.name}: {s.help}" for s in SUITES.values()),
    )
    p.add_argument("--dialect", choices=[*DIALECTS, "all"], default="all", help="default: all")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a fast smoke run; writes nothing unless --output is given",
    )
    p.add_argument(
        "--rounds",
        type=_positive,
        help=f"rounds (default {FULL.rounds}; runs of each workload in the throughput suite: "
        f"default {THROUGHPUT_RUNS})",
    )
    p.add_argument(
        "--n",
        type=_positive,
        help="timed calls of each kind per round, in the direct and enqueue suites "
        f"(default {FULL.n})",
    )
    p.add_argument(
        "--warmup",
        type=_non_negative,
        help=f"untimed calls of each kind first (default {FULL.warmup})",
    )
    p.add_argument(
        "--postgres-url",
        default=default_postgres_url(),
        help=f"server to create the scratch database on (default: ${POSTGRES_URL_ENV}, "
        f"else {DEFAULT_POSTGRES_URL})",
    )
    p.add_argument(
        "--sqlite-synchronous",
        default="FULL",
        choices=["OFF", "NORMAL", "FULL", "EXTRA"],
        help="SQLite PRAGMA synchronous (default: FULL, taskflow's default)",
    )
    p.add_argument("--no-write", action="store_true", help="print the results only")
    p.add_argument(
        "--output",
        type=Path,
        help=f"file to write (default {_shown(DEFAULT_OUTPUT)}; with --quick, write only "
        "when this is given)",
    )
    return p


def _shown(path: Path) -> str:
    return str(path.relative_to(DEFAULT_OUTPUT.parent.parent))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def options_from(args: argparse.Namespace, argv: Sequence[str]) -> Options:
    """The run's options: the preset (full or quick) with explicit sizes on top."""
    preset = QUICK if args.quick else FULL
    sizes = Sizes(
        rounds=args.rounds or preset.rounds,
        n=args.n or preset.n,
        warmup=preset.warmup if args.warmup is None else args.warmup,
    )
    return Options(
        sizes=sizes,
        dialects=DIALECTS if args.dialect == "all" else (args.dialect,),
        postgres_url=args.postgres_url,
        sqlite_synchronous=args.sqlite_synchronous,
        quick=args.quick,
        throughput_runs=args.rounds or (preset.rounds if args.quick else THROUGHPUT_RUNS),
        command=" ".join(["python3 -m bench", *map(shlex.quote, argv)]),
    )


def output_path(args: argparse.Namespace) -> Path | None:
    """Where to write the report, or None to only print it."""
    if args.no_write:
        return None
    if args.output is not None:
        return Path(args.output)
    return None if args.quick else DEFAULT_OUTPUT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 when it cannot run (the reason on stderr), 130 when
    interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    options = options_from(args, argv)
    suites = [SUITES[name] for name in (args.suite or SUITES)]
    if busy():
        progress(
            f"bench: warning: the machine is busy (load average {load_average()}); "
            "figures will be noisy"
        )
    try:
        environment = describe(options)
        reports = [suite.run(options) for suite in suites]
    except BenchError as exc:
        progress(f"bench: {exc}")
        return 1
    except KeyboardInterrupt:
        progress("bench: interrupted (scratch databases removed)")
        return 130
    for report in reports:
        print(report.render(environment))
    target = output_path(args)
    if target is not None:
        write_report(target, reports, environment)
        progress(f"bench: wrote {target}")
    return 0
