"""``taskflow prune`` and ``taskflow purge`` run as subprocesses against a real database:
table and ``--json`` output, a dry run, confirmation, and bad input (a malformed duration, a
database that is down, an unknown queue): clear errors, non-zero exits, nothing changed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskflow.broker import Broker, create_broker
from taskflow.clock import SystemClock, now_ms
from taskflow.config import Config
from taskflow.models import NewWorkflow, StepRow
from taskflow.status import Status

from .helpers import PROCESS_LIMIT, REPO_ROOT, TASKFLOW_CLI, workflow_ids
from .retentionapp import APP_SPEC

pytestmark = pytest.mark.slow

DAY = 86_400_000
CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:9/taskflow"
"""Nothing listens on the discard port: a database that is down."""


@pytest.fixture
def broker(database_url: str) -> Iterator[Broker]:
    b = create_broker(Config(database_url=database_url))
    b.migrate()
    yield b
    b.close()


def cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``taskflow <args>`` in a fresh process."""
    return subprocess.run(
        [*TASKFLOW_CLI, *args],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PROCESS_LIMIT,
        check=False,
    )


def one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """A non-zero exit, no traceback, and one ``Error:`` line naming ``needles``."""
    shown = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode != 0, shown
    assert "Traceback" not in proc.stderr, shown
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, shown
    for needle in needles:
        assert needle in errors[0], shown


def finished(broker: Broker, workflow_id: str, finished_at: int) -> None:
    """A SUCCESS workflow with two steps that finished at ``finished_at``."""
    new = NewWorkflow(
        id=workflow_id,
        name="orders.process",
        status=Status.PENDING,
        inputs='{"args":[],"kwargs":{}}',
        executor_id="exec",
        created_at=finished_at - 1,
        started_at=finished_at - 1,
    )
    assert broker.start_workflow(new, finished_at - 1).created
    for step_id in (0, 1):
        broker.record_step(workflow_id, StepRow(step_id=step_id, name="s", output="1"))
    assert broker.finish_workflow(workflow_id, Status.SUCCESS, "null", None, finished_at)


def waiting(broker: Broker, workflow_id: str, queue: str, *, delay: bool = False) -> None:
    now = now_ms(SystemClock())
    new = NewWorkflow(
        id=workflow_id,
        name="orders.process",
        status=Status.ENQUEUED,
        inputs='{"args":[],"kwargs":{}}',
        queue=queue,
        created_at=now,
        delay_until=now + DAY if delay else None,
    )
    assert broker.enqueue([new], now)[0].created


# -- prune ---------------------------------------------------------------------------------


def test_prune_dry_run_then_for_real_as_table_and_json(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    now = now_ms(SystemClock())
    finished(broker, "old-1", now - 10 * DAY)
    finished(broker, "old-2", now - 8 * DAY)
    finished(broker, "recent", now - 2 * DAY)
    waiting(broker, "queued", "default")

    dry = cli(tmp_path, "prune", "--database-url", database_url, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    preview = json.loads(dry.stdout)
    assert preview["dry_run"] is True
    assert (preview["workflows"], preview["steps"], preview["messages"]) == (2, 4, 0)
    assert preview["older_than_seconds"] == 7 * 86_400  # the default result_expires
    assert workflow_ids(database_url) == ["old-1", "old-2", "queued", "recent"]

    done = cli(tmp_path, "prune", "--database-url", database_url, "--older-than", "7d")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("removed: workflows that finished before ")
    assert "(older than 7d)" in lines[0]
    table = {row.split()[0]: row.split()[1] for row in lines[1:]}
    assert table["TABLE"] == "ROWS"
    assert (table["workflows"], table["steps"], table["events"]) == ("2", "4", "0")
    assert workflow_ids(database_url) == ["queued", "recent"]

    again = cli(
        tmp_path,
        "prune",
        "--database-url",
        database_url,
        "--older-than",
        "1d",
        "--batch-size",
        "1",
        "--json",
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["workflows"] == 1
    assert workflow_ids(database_url) == ["queued"]


def test_prune_takes_result_expires_from_the_app(database_url: str, tmp_path: Path) -> None:
    # retentionapp keeps finished workflows for half a second.
    b = create_broker(Config(database_url=database_url))
    b.migrate()
    try:
        finished(b, "a-second-ago", now_ms(SystemClock()) - 1_000)
    finally:
        b.close()
    env_url = {"TASKFLOW_WORKERAPP_DATABASE_URL": database_url}
    proc = subprocess.run(
        [*TASKFLOW_CLI, "prune", "-A", APP_SPEC, "--json"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), **env_url},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PROCESS_LIMIT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["older_than_seconds"], out["workflows"]) == (0.5, 1)


@pytest.mark.parametrize("bad", ["7x", "-1d", "0", "d7"])
def test_prune_refuses_a_malformed_duration_and_changes_nothing(
    bad: str, broker: Broker, database_url: str, tmp_path: Path
) -> None:
    finished(broker, "old", now_ms(SystemClock()) - 10 * DAY)
    proc = cli(tmp_path, "prune", "--database-url", database_url, f"--older-than={bad}")
    one_error_line(proc, "--older-than", repr(bad))
    assert workflow_ids(database_url) == ["old"]


def test_prune_and_purge_fail_clearly_when_the_database_is_down(tmp_path: Path) -> None:
    for args in (["prune"], ["prune", "--dry-run"], ["purge", "-Q", "default", "--yes"]):
        proc = cli(tmp_path, *args, "--database-url", CLOSED_PORT_URL)
        one_error_line(proc, "cannot connect", "127.0.0.1:9")
        assert proc.stdout == ""


# -- purge ---------------------------------------------------------------------------------


def test_purge_asks_first_and_a_no_changes_nothing(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    waiting(broker, "mail-1", "mail")
    waiting(broker, "mail-2", "mail", delay=True)
    waiting(broker, "report", "reports")
    before = [broker.get_status(w) for w in ("mail-1", "mail-2", "report")]

    proc = cli(tmp_path, "purge", "--database-url", database_url, "-Q", "mail", stdin="n\n")

    assert proc.returncode != 0
    assert "Cancel 2 waiting workflow(s) (2 in 'mail')" in proc.stderr, proc.stderr
    assert "Aborted" in proc.stderr
    assert [broker.get_status(w) for w in ("mail-1", "mail-2", "report")] == before
    # No answer at all (stdin closed) is a no too.
    closed = cli(tmp_path, "purge", "--database-url", database_url, "-Q", "mail")
    assert closed.returncode != 0
    assert [broker.get_status(w) for w in ("mail-1", "mail-2", "report")] == before


def test_purge_cancels_after_a_yes_as_table_and_json(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    waiting(broker, "mail-1", "mail")
    waiting(broker, "mail-2", "mail", delay=True)
    waiting(broker, "report-1", "reports")
    waiting(broker, "report-2", "reports")
    waiting(broker, "other", "other")
    # As workers serving them would: then they stay known once empty.
    broker.register_queues(["mail", "reports", "other"], now_ms(SystemClock()))

    proc = cli(tmp_path, "purge", "--database-url", database_url, "-Q", "mail", stdin="y\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["QUEUE", "CANCELLED", "mail", "2"]
    assert broker.get_status("mail-1") is Status.CANCELLED
    assert broker.get_status("mail-2") is Status.CANCELLED

    as_json = cli(
        tmp_path, "purge", "--database-url", database_url, "-Q", "reports,mail", "--yes", "--json"
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {"queue": "reports", "cancelled": 2, "ids": ["report-1", "report-2"]},
        {"queue": "mail", "cancelled": 0, "ids": []},
    ]
    assert broker.get_status("other") is Status.ENQUEUED


def test_purge_refuses_an_unknown_or_invalid_queue(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    waiting(broker, "mail-1", "mail")
    unknown = cli(tmp_path, "purge", "--database-url", database_url, "-Q", "mial", "--yes")
    one_error_line(unknown, "unknown queue 'mial'", "mail")
    invalid = cli(tmp_path, "purge", "--database-url", database_url, "-Q", "a b", "--yes")
    one_error_line(invalid, "'a b'")
    assert broker.get_status("mail-1") is Status.ENQUEUED
