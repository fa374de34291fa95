"""Helpers of the integration tests: an injectable clock, polling with a deadline, a simulated
crash, raw row counts, and running :mod:`crashapp` in child processes."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from . import crashapp

CRASHAPP = Path(crashapp.__file__).resolve()
PROCESS_LIMIT = 60.0
"""Seconds any child process or awaited condition may take before the test fails."""


class FakeClock:
    """A clock that never blocks: ``sleep`` records the delay and moves time forward."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._monotonic = 1_000.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """Fake wall time, in seconds since the epoch."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Fake monotonic time."""
        with self._lock:
            return self._monotonic

    def sleep(self, seconds: float) -> None:
        """Record the delay and advance time by it, at once."""
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        with self._lock:
            self._now += seconds
            self._monotonic += seconds


class SimulatedCrash(BaseException):
    """Stands for the process dying: taskflow records nothing for a ``BaseException`` that is
    not an ``Exception``, so the workflow stays PENDING, as after a real crash."""


def wait_for(condition: Callable[[], bool], what: str, limit: float = PROCESS_LIMIT) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``limit`` seconds."""
    give_up = time.monotonic() + limit
    delay = 0.001
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def workflow_ids(database_url: str) -> list[str]:
    """Every workflow id stored in the database, read with a plain driver (not taskflow)."""
    rows: list[tuple[Any, ...]]
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        if not os.path.exists(path):
            return []
        with contextlib.closing(sqlite3.connect(path)) as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'workflows'"
            ).fetchone()
            rows = conn.execute("SELECT id FROM workflows").fetchall() if exists else []
    else:
        with psycopg.connect(database_url, autocommit=True) as conn:
            rows = conn.execute("SELECT id FROM taskflow.workflows").fetchall()
    return sorted(str(r[0]) for r in rows)


# -- child processes ---------------------------------------------------------------------------
def crash_env(database_url: str, workdir: Path, block_at: str | None = None) -> dict[str, str]:
    """Environment of a :mod:`crashapp` process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
    env[crashapp.DATABASE_URL_ENV] = database_url
    env[crashapp.WORKDIR_ENV] = str(workdir)
    if block_at is not None:
        env[crashapp.BLOCK_AT_ENV] = block_at
    return env


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``crashapp.py <args>`` in a new Python process."""
    return subprocess.Popen(
        [sys.executable, "-W", "error", str(CRASHAPP), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for a child that should succeed and return the JSON it printed last."""
    try:
        out, err = proc.communicate(timeout=PROCESS_LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{proc.args!r} did not finish:\n{out}\n{err}") from None
    assert proc.returncode == 0, f"{proc.args!r} exited with {proc.returncode}:\n{out}\n{err}"
    lines = out.strip().splitlines()
    assert lines, f"{proc.args!r} printed nothing:\n{err}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run(env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run ``crashapp.py <args>`` to its end and return the JSON it printed."""
    return finish(spawn(env, *args))


def start_and_kill(env: dict[str, str], workdir: Path, label: str, *args: str) -> int:
    """Start ``crashapp.py <args>``, wait until it blocks at boundary ``label``, SIGKILL it
    and reap it; return its pid."""
    proc = spawn(env, *args)
    marker = workdir / f"blocked-{label}"
    try:

        def blocked() -> bool:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(
                    f"{proc.args!r} exited with {proc.returncode} before blocking at "
                    f"{label!r}:\n{out}\n{err}"
                )
            return marker.exists()

        wait_for(blocked, f"the child to block at boundary {label!r}")
        assert marker.read_text(encoding="utf-8") == str(proc.pid)
    finally:
        proc.kill()  # SIGKILL
        proc.communicate(timeout=PROCESS_LIMIT)  # reap it: a zombie still looks alive
    assert proc.returncode == -9, proc.returncode
    marker.unlink()
    return proc.pid


def side_effects(workdir: Path) -> list[tuple[str, int]]:
    """The (label, pid) lines the children appended, in order."""
    path = workdir / crashapp.SIDE_EFFECTS
    if not path.exists():
        return []
    out: list[tuple[str, int]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, pid = line.split()
        out.append((label, int(pid)))
    return out


def side_effect_counts(workdir: Path) -> Counter[str]:
    """How many times each label ran."""
    return Counter(label for label, _ in side_effects(workdir))
