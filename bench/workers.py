"""What the worker suites share: the producer's app on a scratch database, ``taskflow worker``
as a real subprocess, and a look at the workflow rows it writes.

The worker is started as ``taskflow worker -A bench.app:app -c 2 -Q default`` (the console
script's code, run by this interpreter, so it is the same Python and the same taskflow), with
the scratch database in its environment (see bench/app.py), its log read line by line on a
thread: the moment the line ending in ``ready.`` arrives is when it is ready. It is stopped
with SIGTERM (a warm shutdown) and waited for; a worker that is not gone within a minute is
killed and the suite fails.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from bench.app import (
    APP_SPEC,
    DATABASE_URL_ENV,
    SQLITE_SYNCHRONOUS_ENV,
    BenchApp,
    create_app,
)
from bench.common import REPO_ROOT, BenchError, Options, progress
from bench.databases import ScratchDatabase, sqlite_connect

WORKER_CONCURRENCY = 2
"""``-c``: prefork child processes."""

STARTUP_TIMEOUT = 60.0
"""Seconds a worker may take to log ``ready.``."""

STOP_TIMEOUT = 60.0
"""Seconds a worker may take to exit after SIGTERM."""

WORKER_QUEUES = ("default",)
"""``-Q`` unless a suite says otherwise. Without ``-Q`` a worker serves every queue the app
declares, and bench/app.py declares limited queues for the ``queues`` suite: the other suites
measure the default queue alone, as they did before the app had any."""

_CLI = "import sys; from taskflow.cli import main; sys.argv[0] = 'taskflow'; main()"


def worker_arguments(
    concurrency: int = WORKER_CONCURRENCY, queues: Sequence[str] = WORKER_QUEUES
) -> list[str]:
    """``taskflow worker``'s arguments: the app, ``-c`` and ``-Q``."""
    return ["-A", APP_SPEC, "-c", str(concurrency), "-Q", ",".join(queues)]


def worker_command_shown(
    concurrency: int = WORKER_CONCURRENCY, queues: Sequence[str] = WORKER_QUEUES
) -> str:
    """The worker's command line as the report shows it."""
    return " ".join(["taskflow worker", *worker_arguments(concurrency, queues)])


@contextmanager
def producer_app(db: ScratchDatabase, options: Options) -> Iterator[BenchApp]:
    """The benchmark app on ``db`` in this process, migrated; closed afterwards."""
    bench = create_app(db.url, options.sqlite_synchronous)
    try:
        bench.app.migrate()
        yield bench
    finally:
        bench.app.close()


def worker_environment(db: ScratchDatabase, options: Options) -> dict[str, str]:
    """This process's environment, plus what the worker's copy of the app reads."""
    env = dict(os.environ)
    env[DATABASE_URL_ENV] = db.url
    env[SQLITE_SYNCHRONOUS_ENV] = options.sqlite_synchronous
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """One ``taskflow worker`` subprocess and its log."""

    def __init__(
        self,
        db: ScratchDatabase,
        options: Options,
        concurrency: int = WORKER_CONCURRENCY,
        queues: Sequence[str] = WORKER_QUEUES,
    ) -> None:
        self.dialect = db.dialect
        self.spawned_at = time.perf_counter()
        self.ready_at: float | None = None
        """``time.perf_counter()`` when the ``ready.`` line arrived."""
        self.concurrency: str | None = None
        """The banner's concurrency line (``2 processes x 4 threads = 8 (prefork)``)."""
        self.lines = 0
        self.problems: list[str] = []
        """Log lines at ERROR or CRITICAL, and traceback headers (the first 20)."""
        self._tail: deque[str] = deque(maxlen=40)
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CLI, "worker", *worker_arguments(concurrency, queues)],
            cwd=REPO_ROOT,
            env=worker_environment(db, options),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="bench-worker-log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        for line in stream:
            stamp = time.perf_counter()
            text = line.rstrip()
            self.lines += 1
            self._tail.append(text)
            if len(self.problems) < 20 and (
                " ERROR]" in text or " CRITICAL]" in text or text.startswith("Traceback")
            ):
                self.problems.append(text)
            if self.concurrency is None and ".> concurrency:" in text:
                self.concurrency = text.split(".> concurrency:", 1)[1].strip()
            if self.ready_at is None and text.endswith(" ready."):
                self.ready_at = stamp
                self._ready.set()

    def tail(self) -> str:
        """The last lines of the worker's log, for error messages."""
        return "\n".join(f"    {line}" for line in self._tail) or "    (no output)"

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> float:
        """Wait for ``ready.``; return its ``perf_counter`` time."""
        deadline = self.spawned_at + timeout
        while not self._ready.wait(0.01):
            self.check_alive("before it was ready")
            if time.perf_counter() > deadline:
                raise BenchError(
                    f"{self.dialect}: the worker did not log 'ready.' within {timeout:.0f} s; "
                    f"its log ends with:\n{self.tail()}"
                )
        assert self.ready_at is not None
        return self.ready_at

    @property
    def startup(self) -> float:
        """Seconds from spawning the process to ``ready.``."""
        if self.ready_at is None:
            raise BenchError("the worker is not ready")
        return self.ready_at - self.spawned_at

    def check_alive(self, when: str = "while work was waiting") -> None:
        """Raise :class:`BenchError` with the log's tail if the worker has exited."""
        code = self.proc.poll()
        if code is not None:
            self._reader.join(2)
            raise BenchError(
                f"{self.dialect}: the worker exited (code {code}) {when}; "
                f"its log ends with:\n{self.tail()}"
            )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (warm shutdown) and wait; kill it if it outlives ``timeout``. Returns the
        exit code, or raises :class:`BenchError` if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._reader.join(2)
                raise BenchError(
                    f"{self.dialect}: the worker was still running {timeout:.0f} s after "
                    f"SIGTERM and was killed; its log ends with:\n{self.tail()}"
                ) from None
        self._reader.join(5)
        return self.proc.returncode


@contextmanager
def running_worker(
    db: ScratchDatabase,
    options: Options,
    concurrency: int = WORKER_CONCURRENCY,
    queues: Sequence[str] = WORKER_QUEUES,
) -> Iterator[WorkerProcess]:
    """A worker on ``db`` serving ``queues`` for the block (not yet
    ready: call ``wait_ready``); stopped with SIGTERM afterwards, and a non-zero exit code
    fails the suite."""
    worker = WorkerProcess(db, options, concurrency, queues)
    try:
        yield worker
    except BaseException:
        try:
            worker.stop()
        except BenchError as exc:
            progress(str(exc))
        raise
    code = worker.stop()
    if code != 0:
        raise BenchError(
            f"{db.dialect}: the worker exited with code {code} after SIGTERM; its log ends "
            f"with:\n{worker.tail()}"
        )
    if worker.problems:
        shown = "\n".join(f"    {line}" for line in worker.problems)
        progress(f"{db.dialect}: warning: the worker logged errors:\n{shown}")


class WorkflowRows:
    """The workflow table of a scratch database, read on a connection of the benchmark's own
    (so it never competes for the app's pool). Timestamps are integer milliseconds."""

    def __init__(self, db: ScratchDatabase, options: Options, schema: str) -> None:
        self.dialect = db.dialect
        self._pg: psycopg.Connection[Any] | None = None
        self._lite: sqlite3.Connection | None = None
        self._workflows: sql.Composable
        self._steps: sql.Composable
        if db.dialect == "postgres":
            self._pg = psycopg.connect(db.url, autocommit=True)
            self._workflows = sql.SQL("{}.workflows").format(sql.Identifier(schema))
            self._steps = sql.SQL("{}.steps").format(sql.Identifier(schema))
        else:
            self._lite = sqlite_connect(db, options.sqlite_synchronous)
            self._workflows = sql.SQL("workflows")
            self._steps = sql.SQL("steps")

    def close(self) -> None:
        """Close the connection."""
        if self._pg is not None:
            self._pg.close()
        if self._lite is not None:
            self._lite.close()

    def _query(self, template: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run ``template`` ({w}: the workflows table, {s}: the steps table, %s: a parameter)."""
        statement = sql.SQL(template).format(w=self._workflows, s=self._steps)
        if self._pg is not None:
            cursor = self._pg.execute(statement, params)
            return cursor.fetchall() if cursor.description is not None else []
        assert self._lite is not None
        text = statement.as_string().replace("%s", "?")
        return self._lite.execute(text, tuple(params)).fetchall()

    def open_work(self) -> bool:
        """True while any workflow is ENQUEUED or PENDING (cheap: two partial indexes)."""
        rows = self._query(
            "SELECT EXISTS (SELECT 1 FROM {w} WHERE status = 'ENQUEUED') "
            "OR EXISTS (SELECT 1 FROM {w} WHERE status = 'PENDING')"
        )
        return bool(rows[0][0])

    def unfinished(self) -> int:
        """How many are ENQUEUED or PENDING."""
        rows = self._query(
            "SELECT (SELECT count(*) FROM {w} WHERE status = 'ENQUEUED') "
            "+ (SELECT count(*) FROM {w} WHERE status = 'PENDING')"
        )
        return int(rows[0][0])

    def by_status(self) -> dict[str, int]:
        """How many workflows are in each status."""
        return {
            str(status): int(count)
            for status, count in self._query("SELECT status, count(*) FROM {w} GROUP BY status")
        }

    def first_error(self) -> str | None:
        """The stored error of one workflow that did not succeed, if any."""
        rows = self._query(
            "SELECT name, status, error FROM {w} WHERE status NOT IN "
            "('ENQUEUED', 'PENDING', 'DELAYED', 'SUCCESS') LIMIT 1"
        )
        if not rows:
            return None
        name, status, error = rows[0]
        return f"{name} ended {status}: {error}"

    def span(self) -> tuple[int, int, int]:
        """``(count, first started_at, last finished_at)`` over every workflow."""
        rows = self._query("SELECT count(*), min(started_at), max(finished_at) FROM {w}")
        count, first, last = rows[0]
        if first is None or last is None:
            raise BenchError(f"{self.dialect}: no workflow has started and finished")
        return int(count), int(first), int(last)

    def times(self, ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        """``id -> (created_at, started_at, finished_at)``."""
        marks = ", ".join(["%s"] * len(ids))
        rows = self._query(
            "SELECT id, created_at, started_at, finished_at FROM {w} WHERE id IN (" + marks + ")",
            ids,
        )
        found: dict[str, tuple[int, int, int]] = {}
        for wid, created, started, finished in rows:
            if started is None or finished is None:
                raise BenchError(f"{self.dialect}: workflow {wid} has no start or finish time")
            found[str(wid)] = (int(created), int(started), int(finished))
        return found

    def analyze(self) -> None:
        """Postgres: give the planner statistics of the workflow table, as autovacuum does on a
        database in use (a new or truncated table has none). SQLite: nothing."""
        if self._pg is not None:
            self._query("ANALYZE {w}")

    def clear(self) -> None:
        """Delete every workflow and step (between rounds, with no worker running)."""
        if self._pg is not None:
            self._query("TRUNCATE {w}, {s}")
            return
        self._query("DELETE FROM {s}")
        self._query("DELETE FROM {w}")


@contextmanager
def workflow_rows(db: ScratchDatabase, options: Options, bench: BenchApp) -> Iterator[WorkflowRows]:
    """:class:`WorkflowRows` on ``db`` (the app's schema on Postgres), closed afterwards."""
    rows = WorkflowRows(db, options, bench.app.conf.database_schema)
    try:
        yield rows
    finally:
        rows.close()
