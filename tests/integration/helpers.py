"""Helpers of the integration tests: an injectable clock, polling with a deadline, a simulated
crash, raw row counts, running :mod:`crashapp` in child processes, and running ``taskflow
worker`` processes on :mod:`workerapp`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
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

from . import crashapp, workerapp

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


def wait_for(
    condition: Callable[[], bool],
    what: str,
    limit: float = PROCESS_LIMIT,
    interval: float = 0.02,
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``limit`` seconds.
    Polls back off to one every ``interval`` seconds."""
    give_up = time.monotonic() + limit
    delay = 0.001
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, interval)


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


# -- `taskflow worker` processes ------------------------------------------------------------
REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_APP = "tests.integration.workerapp:app"
TASKFLOW_CLI = [sys.executable, "-c", "from taskflow.cli import main; main()"]
"""The ``taskflow`` command (``python -m taskflow.cli`` would not run ``main``)."""


def worker_env(
    database_url: str,
    workdir: Path,
    *,
    threads: int | None = None,
    shutdown_timeout: float | None = None,
    app_version: str | None = None,
) -> dict[str, str]:
    """Environment of a process that loads :mod:`workerapp`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    env[workerapp.DATABASE_URL_ENV] = database_url
    env[workerapp.WORKDIR_ENV] = str(workdir)
    if threads is not None:
        env[workerapp.THREADS_ENV] = str(threads)
    if shutdown_timeout is not None:
        env[workerapp.SHUTDOWN_TIMEOUT_ENV] = str(shutdown_timeout)
    if app_version is not None:
        env[workerapp.VERSION_ENV] = app_version
    return env


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def child_pids(pid: int) -> set[int]:
    """Live child processes of ``pid`` (from ``/proc/<pid>/task/*/children``)."""
    found: set[int] = set()
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            text = (task / "children").read_text(encoding="ascii")
        except OSError:
            continue
        found.update(int(p) for p in text.split())
    return {p for p in found if pid_alive(p)}


class WorkerProcess:
    """One ``taskflow worker`` process started by a test; its output goes to a log file."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.proc = proc
        self.log_path = log
        self.name = name

    def __repr__(self) -> str:
        return f"<worker {self.name} pid {self.pid}>"

    @property
    def pid(self) -> int:
        """Process id of the worker (the parent of its children)."""
        return self.proc.pid

    def log(self) -> str:
        """Everything it wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def children(self) -> set[int]:
        """Its live child processes."""
        return child_pids(self.pid)

    def alive(self) -> bool:
        """True while it runs."""
        return self.proc.poll() is None

    def assert_alive(self) -> None:
        """Fail, showing its log, if it exited."""
        if self.proc.poll() is not None:
            raise AssertionError(
                f"worker {self.name} exited with {self.proc.returncode}:\n{self.log()}"
            )

    def wait_for_log(self, text: str, limit: float = PROCESS_LIMIT) -> None:
        """Wait until ``text`` appears in its output (failing if it exits first)."""

        def logged() -> bool:
            if text in self.log():
                return True
            self.assert_alive()
            return False

        wait_for(logged, f"{text!r} in the log of worker {self.name}", limit)

    def wait_ready(self) -> None:
        """Wait for its ``<name> ready.`` line."""
        self.wait_for_log(f"{self.name} ready.")

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the worker process only."""
        os.kill(self.pid, signum)

    def wait_exit(self, limit: float = PROCESS_LIMIT) -> int:
        """Wait for it to exit; return its exit code."""
        try:
            return self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.name} did not exit within {limit}s:\n{self.log()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL it and everything in its process group, and reap it."""
        if self.proc.returncode is None:
            # Not reaped yet, so the group id cannot name anyone else's processes.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=PROCESS_LIMIT)


class Workers:
    """Starts ``taskflow worker`` processes for one test and kills what is left at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[WorkerProcess] = []

    def start(
        self,
        database_url: str,
        *args: str,
        name: str | None = None,
        ready: bool = True,
        threads: int | None = None,
        shutdown_timeout: float | None = None,
        app_version: str | None = None,
        app: str = WORKER_APP,
    ) -> WorkerProcess:
        """Start ``taskflow worker -A <app> -n <name> -l info <args>``; with ``ready``, wait
        for its ready line."""
        name = name or f"w{len(self.started) + 1}"
        log = self.workdir / f"worker-{name}.log"
        env = worker_env(
            database_url,
            self.workdir,
            threads=threads,
            shutdown_timeout=shutdown_timeout,
            app_version=app_version,
        )
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*TASKFLOW_CLI, "worker", "-A", app, "-n", name, "-l", "info", *args],
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one at the end
            )
        worker = WorkerProcess(proc, log, name)
        self.started.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    def close(self) -> None:
        """Kill every worker still running (and its children)."""
        for worker in self.started:
            worker.kill()


def read_side_effects(workdir: Path) -> list[tuple[str, str, str, int]]:
    """The ``(label, workflow id, step, pid)`` lines :mod:`workerapp` appended, in order."""
    path = workdir / workerapp.SIDE_EFFECTS
    if not path.exists():
        return []
    out: list[tuple[str, str, str, int]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, wid, step, pid = line.split()
        out.append((label, wid, step, int(pid)))
    return out


def step_counts(workdir: Path) -> Counter[tuple[str, str]]:
    """How many times each ``(workflow id, step)`` ran."""
    return Counter((wid, step) for _, wid, step, _ in read_side_effects(workdir))


def read_events(workdir: Path) -> list[dict[str, Any]]:
    """The JSON events :mod:`workerapp` appended, in order."""
    path = workdir / workerapp.EVENTS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def status_counts(database_url: str) -> Counter[str]:
    """How many workflows have each status, read with a plain driver (not taskflow)."""
    rows: list[tuple[Any, ...]]
    query = "SELECT status, count(*) FROM {} GROUP BY status"
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = conn.execute(query.format("workflows")).fetchall()
    else:
        with psycopg.connect(database_url, autocommit=True) as conn:
            rows = conn.execute(query.format("taskflow.workflows")).fetchall()
    return Counter({str(status): int(count) for status, count in rows})


def release(workdir: Path, *workflow_ids: str) -> None:
    """Let the blocking step of these :data:`workerapp.SLOW` workflows return."""
    for wid in workflow_ids:
        (workdir / f"release-{wid}").write_text("", encoding="utf-8")


def blocked_pid(workdir: Path, workflow_id: str) -> int | None:
    """Pid of the process whose blocking step of ``workflow_id`` waits now (None: none yet)."""
    marker = workdir / f"blocked-{workflow_id}"
    if not marker.exists():
        return None
    return int(marker.read_text(encoding="utf-8"))
