"""``taskflow workflows list|show|steps|cancel|resume|fork`` and ``taskflow versions
list|set-latest``, run as real subprocesses against a real database: tables for people,
``--json`` for scripts, and bad input refused with one line on stderr, a non-zero exit and
nothing changed. Independent commands run side by side to keep the test short."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from taskflow import Status, Taskflow
from taskflow.clock import now_ms

from .helpers import PROCESS_LIMIT, TASKFLOW_CLI


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}


def cli_many(
    commands: Sequence[Sequence[str]], cwd: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Run ``taskflow <command>`` for each command, all at once; their results in order."""
    procs = [
        subprocess.Popen(
            [*TASKFLOW_CLI, *command],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    done: list[subprocess.CompletedProcess[str]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=PROCESS_LIMIT)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def cli(cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run one ``taskflow <command>``."""
    return cli_many([command], cwd)[0]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def table(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """The rows of an aligned table, split on runs of spaces (the header first)."""
    lines = ok(result).splitlines()
    # Aligned: every column starts at the same offset on every line.
    starts = [i for i, c in enumerate(lines[0]) if c != " " and (i == 0 or lines[0][i - 1] == " ")]
    for line in lines[1:]:
        for start in starts[1:]:
            assert line[start - 1] == " ", f"column at {start} not aligned in {line!r}"
    return [line.split() for line in lines]


def failed_with(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A non-zero exit with one ``Error:`` line naming every fragment, and no traceback."""
    assert result.returncode != 0, f"{result.args} succeeded:\n{result.stdout}"
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert result.stdout == ""


class Shop:
    """Workflows in every interesting state, written by an app in this process."""

    def __init__(self, app: Taskflow) -> None:
        self.app = app

        @app.step(name="cli.double")
        def double(x: int) -> int:
            return 2 * x

        @app.workflow(name="cli.add")
        def add(x: int) -> int:
            return double(double(x))

        @app.workflow(name="cli.fail")
        def fail(x: int) -> int:
            double(x)
            raise ValueError(f"boom {x}")

        add.apply(args=(1,), workflow_id="add-1")
        fail.apply(args=(2,), workflow_id="fail-1")
        add.apply_async(args=(3,), workflow_id="wait-1")
        add.apply_async(args=(4,), workflow_id="later-1", countdown=3600, user="alice")
        now = now_ms(app.clock)
        app.broker.declare_queues([], "v1", now - 10)
        app.broker.declare_queues([], "v2", now - 5)

    def status(self, workflow_id: str) -> Status:
        return self.app.retrieve(workflow_id).status


@pytest.fixture
def shop(make_app: Callable[..., Taskflow]) -> Shop:
    return Shop(make_app(app_version="v1"))


@pytest.mark.slow
def test_workflows_and_versions_commands(shop: Shop, database_url: str, tmp_path: Path) -> None:
    db = ("--database-url", database_url)
    listed, errors, page, shown, steps, versions, since, until = cli_many(
        [
            ("workflows", "list", *db),
            ("workflows", "list", "--status", "error,SUCCESS", "--json", "--outputs", *db),
            ("workflows", "list", "-Q", "default", "--oldest-first", "--limit", "1", "--json", *db),
            ("workflows", "show", "fail-1", *db),
            ("workflows", "steps", "add-1", "--json", *db),
            ("versions", "list", "--json", *db),
            ("workflows", "list", "--since", "1h", "--user", "alice", "--json", *db),
            ("workflows", "list", "--until", "1h", "--json", *db),
        ],
        tmp_path,
    )
    rows = table(listed)
    assert rows[0] == [
        "ID",
        "NAME",
        "STATUS",
        "QUEUE",
        "CREATED_AT",
        "FINISHED_AT",
        "ATTEMPTS",
        "APP_VERSION",
    ]
    assert [r[0] for r in rows[1:]] == ["later-1", "wait-1", "fail-1", "add-1"]  # newest first
    assert [r[2] for r in rows[1:]] == ["DELAYED", "ENQUEUED", "ERROR", "SUCCESS"]

    found = as_json(errors)
    assert [(w["id"], w["status"], w["output"]) for w in found] == [
        ("fail-1", "ERROR", None),
        ("add-1", "SUCCESS", 4),
    ]
    assert found[0]["error"]["type_name"] == "builtins.ValueError"
    assert found[0]["error"]["message"] == "boom 2"
    assert [w["id"] for w in as_json(page)] == ["wait-1"]  # add-1 and fail-1 have no queue

    shown_text, _, traceback = ok(shown).partition("traceback:\n")
    record = dict(line.split(None, 1) for line in shown_text.splitlines())
    assert record["id"] == "fail-1" and record["status"] == "ERROR"
    assert record["error"] == "builtins.ValueError: boom 2"
    assert record["inputs"] == '{"args":[2],"kwargs":{}}' and record["steps"] == "1"
    assert record["app_version"] == "v1" and record["output"] == "-"
    assert traceback.startswith("  Traceback") and "ValueError: boom 2" in traceback

    assert [(s["step_id"], s["name"], s["status"]) for s in as_json(steps)] == [
        (0, "cli.double", "SUCCESS"),
        (1, "cli.double", "SUCCESS"),
    ]
    assert [(v["version"], v["latest"]) for v in as_json(versions)] == [
        ("v2", True),
        ("v1", False),
    ]
    assert [w["id"] for w in as_json(since)] == ["later-1"]
    assert as_json(until) == []

    # Cancel: the finished one is skipped and reported.
    cancelled = table(cli(tmp_path, "workflows", "cancel", "wait-1", "add-1", *db))
    assert cancelled[1:] == [["wait-1", "cancelled", "CANCELLED"], ["add-1", "skipped", "SUCCESS"]]
    assert shop.status("wait-1") is Status.CANCELLED
    [resumed] = as_json(cli(tmp_path, "workflows", "resume", "wait-1", "--json", *db))
    assert (resumed["id"], resumed["status"], resumed["queue"]) == ("wait-1", "ENQUEUED", "default")

    forked = as_json(
        cli(
            tmp_path,
            *("workflows", "fork", "add-1", "-s", "1", "--app-version", "v2", "--id", "fork-1"),
            *("--json", *db),
        )
    )
    assert forked == {
        "id": "fork-1",
        "forked_from": "add-1",
        "name": "cli.add",
        "status": "ENQUEUED",
        "queue": "default",
        "app_version": "v2",
        "start_step": 1,
        "steps_copied": 1,
    }
    assert [s.name for s in shop.app.steps("fork-1")] == ["cli.double"]

    assert ok(cli(tmp_path, "versions", "set-latest", "v1", *db)).strip() == (
        "v1 is now the latest app version"
    )
    latest = table(cli(tmp_path, "versions", "list", *db))
    assert [r[:2] for r in latest] == [["VERSION", "LATEST"], ["v1", "*"], ["v2", "-"]]


@pytest.mark.slow
def test_bad_input_is_refused_with_one_line_and_changes_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    app = Taskflow("cli-bad", database_url=postgres_url, app_version="v1")
    try:
        bad_input_is_refused(Shop(app), postgres_url, tmp_path)
    finally:
        app.close()


def bad_input_is_refused(shop: Shop, postgres_url: str, tmp_path: Path) -> None:
    db = ("--database-url", postgres_url)
    down = ("--database-url", "postgresql://postgres@127.0.0.1:1/taskflow")
    before = {w.id: w.status for w in shop.app.list_workflows()}
    results = cli_many(
        [
            ("workflows", "show", "nope", *db),
            ("workflows", "steps", "nope", *db),
            ("workflows", "cancel", "wait-1", "nope", *db),
            ("workflows", "resume", "fail-1", "nope", *db),
            ("workflows", "fork", "nope", "-s", "0", *db),
            ("workflows", "fork", "add-1", "-s", "0", "-Q", "nowhere", *db),
            ("workflows", "list", "--status", "DONE", *db),
            ("workflows", "list", "--since", "3 weeks ago", *db),
            ("workflows", "list", "--limit", "0", *db),
            ("versions", "set-latest", "v9", *db),
            ("workflows", "list", *down),
            ("workflows", "cancel", "wait-1", *down),
        ],
        tmp_path,
    )
    show, steps, cancel, resume, fork, fork_queue, status, since, limit, latest = results[:10]
    failed_with(show, "'nope'")
    failed_with(steps, "'nope'")
    failed_with(cancel, "'nope'", "nothing was cancelled")
    failed_with(resume, "'nope'", "nothing was resumed")
    failed_with(fork, "'nope'")
    failed_with(fork_queue, "'nowhere'")
    failed_with(status, "DONE", "ENQUEUED")
    failed_with(since, "'3 weeks ago'", "duration")
    failed_with(limit, "--limit")
    failed_with(latest, "'v9'", "'v1'", "'v2'")
    for result in results[10:]:
        failed_with(result, "cannot connect", "127.0.0.1:1")
    assert {w.id: w.status for w in shop.app.list_workflows()} == before
    assert [v.version for v in shop.app.list_versions()] == ["v2", "v1"]


def test_every_command_has_help(tmp_path: Path) -> None:
    commands = [
        ("workflows", c, "--help") for c in ("list", "show", "steps", "cancel", "resume", "fork")
    ] + [("versions", c, "--help") for c in ("list", "set-latest")]
    for command, result in zip(commands, cli_many(commands, tmp_path), strict=True):
        text = ok(result)
        assert "--database-url" in text and "-A, --app" in text, command
