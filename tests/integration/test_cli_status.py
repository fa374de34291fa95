"""``taskflow status`` and ``taskflow inspect active|scheduled|registered|stats`` run as
subprocesses against a real worker: the table for people and ``--json`` for scripts say the
same thing, and bad input or a database that is down fails with one line."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from taskflow.cli import main

from . import workerapp
from .helpers import (
    PROCESS_LIMIT,
    TASKFLOW_CLI,
    WORKER_APP,
    Workers,
    blocked_pid,
    release,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.slow

Producer = Callable[..., workerapp.WorkerApp]
DOWN_URL = "postgresql://postgres@127.0.0.1:1/taskflow_nowhere"
"""A Postgres URL where no server listens."""


def taskflow(workdir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``taskflow <args>`` in a fresh process (the environment names workerapp's
    database, for ``-A``)."""
    return subprocess.run(
        [*TASKFLOW_CLI, *args],
        env=worker_env(database_url, workdir),
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PROCESS_LIMIT,
        check=False,
    )


def ok(workdir: Path, database_url: str, *args: str) -> str:
    """Stdout of a ``taskflow`` command that must succeed."""
    proc = taskflow(workdir, database_url, *args)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """An aligned table's header and rows, cells split on runs of two or more spaces (a
    cell never holds two spaces in a row)."""
    lines = [re.split(r" {2,}", line.strip()) for line in text.splitlines() if line.strip()]
    return lines[0], lines[1:]


def rows_of(text: str) -> list[dict[str, str]]:
    """An aligned table as one dict per row, keyed by header."""
    header, rows = table(text)
    return [dict(zip(header, row, strict=False)) for row in rows if len(row) == len(header)]


def as_json(workdir: Path, database_url: str, *args: str) -> Any:
    return json.loads(ok(workdir, database_url, *args, "--json"))


def test_status_and_inspect_show_a_live_worker_and_its_work(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(database_url)
    worker = workers.start(database_url, "-P", "threads", "-c", "2", "-Q", "default,a", name="insp")
    # One finished workflow (for stats), one running (blocked in a step), one DELAYED.
    assert wa.noop.apply_async().get(timeout=PROCESS_LIMIT) is None
    running = wa.slow.apply_async(args=("x",))
    later = wa.one_step.apply_async(args=("later",), countdown=3600)
    wait_for(lambda: blocked_pid(worker_dir, running.id) is not None, "the slow workflow to run")
    url = ["--database-url", database_url]
    try:
        # -- status ---------------------------------------------------------------------------
        [me] = as_json(worker_dir, database_url, "status", *url)
        assert (me["name"], me["state"], me["kind"], me["pid"]) == (
            "insp",
            "live",
            "worker",
            worker.pid,
        )
        assert (me["queues"], me["concurrency"], me["pool"]) == (["default", "a"], 2, "threads")
        assert (me["running"], me["runs"]) == (1, {workerapp.SLOW: 1})
        assert me["app_version"] == workerapp.APP_VERSION
        assert 0 <= me["heartbeat_age"] < workerapp.HEARTBEAT_TIMEOUT + 10
        out = ok(worker_dir, database_url, "status", *url)
        [row] = rows_of(out)  # the summary line after the table is one cell: skipped
        assert (row["NAME"], row["STATE"], row["PID"]) == ("insp", "live", str(worker.pid))
        assert (row["QUEUES"], row["CONCURRENCY"], row["RUNNING"]) == ("default,a", "2", "1")
        assert (row["RUNS"], row["VERSION"]) == (workerapp.SLOW, workerapp.APP_VERSION)
        assert row["HEARTBEAT"].endswith(" ago")
        assert out.splitlines()[-1].startswith("1 live, 0 dead")

        # -- inspect active ---------------------------------------------------------------------
        [active] = as_json(worker_dir, database_url, "inspect", "active", *url)
        assert (active["id"], active["name"], active["queue"]) == (
            running.id,
            workerapp.SLOW,
            "default",
        )
        assert (active["worker"], active["worker_state"], active["attempts"]) == ("insp", "live", 1)
        assert active["started_at"] is not None
        [row] = rows_of(ok(worker_dir, database_url, "inspect", "active", *url))
        assert (row["WORKER"], row["ID"], row["NAME"]) == ("insp", running.id, workerapp.SLOW)
        assert row["ATTEMPTS"] == "1"

        # -- inspect scheduled (all queues, then per queue) -------------------------------------
        [scheduled] = as_json(worker_dir, database_url, "inspect", "scheduled", *url)
        assert (scheduled["id"], scheduled["name"], scheduled["waits_for"]) == (
            later.id,
            workerapp.ONE_STEP,
            "eta",
        )
        assert scheduled["wake_at"] is not None
        [row] = rows_of(ok(worker_dir, database_url, "inspect", "scheduled", "-Q", "default", *url))
        assert (row["ID"], row["QUEUE"], row["WAITS_FOR"]) == (later.id, "default", "eta")

        # -- inspect registered: no -A needed ---------------------------------------------------
        [registered] = as_json(worker_dir, database_url, "inspect", "registered", *url)
        assert registered["name"] == "insp"
        assert registered["workflows"] == sorted(wa.app.workflows)
        rows = rows_of(ok(worker_dir, database_url, "inspect", "registered", *url))
        assert [r["WORKFLOW"] for r in rows] == sorted(wa.app.workflows)
        assert {r["WORKER"] for r in rows} == {"insp"}

        # -- inspect stats, through -A (the app's database) ---------------------------------------
        [stats] = as_json(worker_dir, database_url, "inspect", "stats", "-A", WORKER_APP)
        assert (stats["name"], stats["pid"], stats["pool"]) == ("insp", worker.pid, "threads")
        assert (stats["concurrency"], stats["running"]) == (2, 1)
        assert stats["finished"] == {
            "SUCCESS": 1,
            "ERROR": 0,
            "CANCELLED": 0,
            "MAX_RECOVERY_ATTEMPTS_EXCEEDED": 0,
        }
        assert stats["uptime"] > 0
        [row] = rows_of(ok(worker_dir, database_url, "-A", WORKER_APP, "inspect", "stats"))
        assert (row["NAME"], row["POOL"], row["RUNNING"], row["SUCCESS"]) == (
            "insp",
            "threads",
            "1",
            "1",
        )
    finally:
        release(worker_dir, running.id)
    assert running.get(timeout=PROCESS_LIMIT) == ["first", "wait", "last"]


def test_a_dead_worker_shows_as_dead_and_status_fails_without_a_live_one(
    sqlite_url: str, workers: Workers, worker_dir: Path
) -> None:
    worker = workers.start(sqlite_url, "-P", "solo", name="gone")
    worker.kill()  # SIGKILL: its heartbeat row stays until a live worker reaps it
    # The app's heartbeat timeout (3 s) applies, not the default (10 s).
    app = ["-A", WORKER_APP]

    def dead() -> bool:
        proc = taskflow(worker_dir, sqlite_url, "status", *app, "--json")
        return proc.returncode != 0 and json.loads(proc.stdout)[0]["state"] == "dead"

    wait_for(dead, "the killed worker to show as dead")
    proc = taskflow(worker_dir, sqlite_url, "status", *app)
    assert proc.returncode == 1
    [row] = rows_of(proc.stdout)
    assert (row["NAME"], row["STATE"]) == ("gone", "dead")
    assert proc.stderr.strip() == "Error: no live workers"
    [stats] = as_json(worker_dir, sqlite_url, "inspect", "stats", *app)
    assert (stats["name"], stats["state"], stats["pool"]) == ("gone", "dead", "solo")


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["inspect", "active"],
        ["inspect", "scheduled"],
        ["inspect", "registered"],
        ["inspect", "stats"],
    ],
    ids="-".join,
)
def test_a_database_that_is_down_fails_with_one_line(tmp_path: Path, command: list[str]) -> None:
    proc = taskflow(tmp_path, DOWN_URL, *command, "--database-url", DOWN_URL)
    shown = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 1, shown
    assert "Traceback" not in proc.stderr, shown
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, shown
    assert "cannot connect" in lines[0] and "127.0.0.1:1" in lines[0], shown
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("args", "value"),
    [
        (["inspect", "stats", "--since", "soon"], "soon"),
        (["inspect", "active", "--limit", "0"], "0"),
        (["inspect", "nosuch"], "nosuch"),
        (["status", "-A", "nosuchmodule"], "nosuchmodule"),
    ],
    ids=["since", "limit", "subcommand", "app"],
)
def test_bad_input_fails_naming_the_value(sqlite_url: str, args: list[str], value: str) -> None:
    result = CliRunner().invoke(main, [*args, "--database-url", sqlite_url])
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert value in result.stderr.strip().splitlines()[-1], result.stderr


def test_empty_listings_say_so(sqlite_url: str) -> None:
    url = ["--database-url", sqlite_url]
    runner = CliRunner()
    result = runner.invoke(main, ["status", *url])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "no workers"
    assert result.stderr.strip() == "Error: no live workers"
    for command, empty in [
        (["inspect", "active"], "no running workflows"),
        (["inspect", "scheduled", "-Q", "emails"], "no scheduled workflows"),
        (["inspect", "registered"], "no workers"),
        (["inspect", "stats"], "no workers"),
    ]:
        result = runner.invoke(main, [*command, *url])
        assert (result.exit_code, result.stdout.strip()) == (0, empty), result.output
        result = runner.invoke(main, [*command, *url, "--json"])
        assert (result.exit_code, json.loads(result.stdout)) == (0, []), result.output
