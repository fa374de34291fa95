"""What every suite shares: the run's options and progress output."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

DIALECTS = ("postgres", "sqlite")
"""Every dialect a suite can run on, in report order."""

DIALECT_NAMES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}
"""How the report names each dialect."""

POSTGRES_URL_ENV = "TASKFLOW_BENCH_POSTGRES_URL"
"""Environment variable naming the Postgres server to create scratch databases on."""

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
"""Where scratch databases are created unless the option or the variable says otherwise."""

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"


class BenchError(Exception):
    """A benchmark cannot run (no database, bad option); the message says why."""


@dataclass(frozen=True)
class Sizes:
    """How much work a run does."""

    rounds: int
    """Independent repetitions; results report the median round and the spread."""
    n: int
    """Calls timed per batch (per workflow kind, per round)."""
    warmup: int
    """Untimed calls of each kind before the first round."""


FULL = Sizes(rounds=5, n=300, warmup=50)
QUICK = Sizes(rounds=2, n=20, warmup=5)

THROUGHPUT_RUNS = 3
"""Runs of each throughput workload unless ``--rounds`` says otherwise: one run of 50,000
workflows takes from seconds to minutes, so fewer than the other suites' rounds."""


@dataclass(frozen=True)
class Options:
    """Everything a suite needs to know about the run."""

    sizes: Sizes
    dialects: tuple[str, ...]
    postgres_url: str
    """Admin URL of the Postgres server (any database on it; scratch ones are created)."""
    sqlite_synchronous: str
    """SQLite ``PRAGMA synchronous`` the app runs with."""
    quick: bool
    command: str
    """The command line as typed, for the report."""
    throughput_runs: int = THROUGHPUT_RUNS
    """Runs of each workload in the throughput suite."""


def default_postgres_url() -> str:
    """The Postgres admin URL from the environment, else the local default."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def progress(message: str) -> None:
    """Tell the person waiting what is happening (stderr, so stdout stays the report)."""
    print(message, file=sys.stderr, flush=True)
