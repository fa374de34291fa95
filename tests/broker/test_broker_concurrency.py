"""Ten processes starting at once against an empty database must all succeed and leave exactly
one schema."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from taskflow.broker.migrations import LATEST_VERSION, MIGRATIONS
from taskflow.broker.schema import MIGRATIONS_TABLE, current_metadata

PROCESSES = 10

# Each child imports taskflow and builds its broker, says it is ready, then waits for the
# go-file so that all of them call migrate() at the same moment.
CHILD = """
import os, sys, time
from pathlib import Path
url, go, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
from taskflow.broker import create_broker
from taskflow.config import Config
broker = create_broker(Config(database_url=url))
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("never released")
    time.sleep(0.001)
applied = broker.migrate()
version = broker.schema_version()
broker.close()
print(applied, version)
"""


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def tables_and_versions(url: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The taskflow tables present, and (version, count) rows of the migrations table."""
    group = f"SELECT version, COUNT(*) FROM {{}}{MIGRATIONS_TABLE} GROUP BY version ORDER BY 1"
    if url.startswith("postgresql"):
        with psycopg.connect(url, autocommit=True) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
                ).fetchall()
            ]
            return tables, conn.execute(group.format("taskflow.")).fetchall()
    lite = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        tables = [
            r[0]
            for r in lite.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            ).fetchall()
        ]
        return tables, lite.execute(group.format("")).fetchall()
    finally:
        lite.close()


@pytest.mark.slow
def test_ten_processes_migrating_at_once_leave_exactly_one_schema(
    empty_database_url: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, empty_database_url, str(go), str(ready[i])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        wait_for(lambda: all(r.exists() for r in ready), 60, "every process to be ready")
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    failures = [
        f"process {i} exited {p.returncode}:\n{err}"
        for i, (p, (_, err)) in enumerate(zip(procs, outputs, strict=True))
        if p.returncode != 0
    ]
    assert not failures, "\n".join(failures)

    results = [tuple(int(x) for x in out.split()) for out, _ in outputs]
    assert all(version == LATEST_VERSION for _, version in results), results
    # Every migration was applied by exactly one process.
    assert sum(applied for applied, _ in results) == len(MIGRATIONS), results

    tables, versions = tables_and_versions(empty_database_url)
    assert versions == [(m.version, 1) for m in MIGRATIONS]
    if empty_database_url.startswith("postgresql"):
        expected = sorted(
            f"taskflow.{t.name}" for t in current_metadata("taskflow").tables.values()
        )
    else:
        expected = sorted(t.name for t in current_metadata(None).tables.values())
    assert tables == expected
