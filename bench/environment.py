"""What ran the benchmark: machine, software versions and durability settings.

Figures only mean something next to these, so every generated section of the report carries
them.
"""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import subprocess

import psycopg

import taskflow
from bench.common import REPO_ROOT, Options
from bench.databases import postgres_settings, redacted


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews the figures."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def busy() -> bool:
    """True when the last minute's load says other work competes for the CPUs."""
    try:
        return os.getloadavg()[0] > 0.5
    except OSError:
        return False


def git_revision() -> str:
    """Short commit of the checkout, saying so when ``taskflow/`` (the code measured) has
    uncommitted changes."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "taskflow")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}, with uncommitted changes to taskflow/" if dirty else commit


def _git(*args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
    )
    return out.stdout.strip()


def describe(options: Options) -> list[tuple[str, str]]:
    """Label/value rows describing this run."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        ("date", now),
        ("command", f"`{options.command}`"),
        ("taskflow", f"{taskflow.__version__} (commit {git_revision()})"),
        ("CPU", f"{os.cpu_count()} cores (nproc), {cpu_model()}"),
        ("load average at start", load_average()),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("psycopg", f"{psycopg.__version__} ({psycopg.pq.__impl__}, libpq {_libpq()})"),
    ]
    if "postgres" in options.dialects:
        rows.append(("PostgreSQL", _postgres(options.postgres_url)))
    if "sqlite" in options.dialects:
        rows.append(
            (
                "SQLite",
                f"{sqlite3.sqlite_version}, journal_mode=WAL, "
                f"synchronous={options.sqlite_synchronous}, file in a temporary folder",
            )
        )
    return rows


def _libpq() -> str:
    version = psycopg.pq.version()
    return f"{version // 10000}.{version % 10000}"


def _postgres(admin_url: str) -> str:
    s = postgres_settings(admin_url)
    return (
        f"{s['server_version']} at {redacted(admin_url).rsplit('/', 1)[0]}, "
        f"synchronous_commit={s['synchronous_commit']}, fsync={s['fsync']}, "
        f"wal_sync_method={s['wal_sync_method']}"
    )
