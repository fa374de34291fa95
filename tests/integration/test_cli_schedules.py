"""``taskflow schedules ...`` as subprocesses against a real database: the table and
``--json`` listings with next fire times, pause/resume/trigger/backfill/delete, and bad input
(an unknown schedule, a malformed time, a database that is down): one error line, a non-zero
exit, nothing changed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from taskflow import Client

from .helpers import PROCESS_LIMIT, REPO_ROOT, TASKFLOW_CLI, workflow_ids

pytestmark = pytest.mark.slow

CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:9/taskflow"
"""Nothing listens on the discard port: a database that is down."""


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``taskflow <args>`` in a fresh process that never imports an app."""
    return subprocess.run(
        [*TASKFLOW_CLI, *args],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PROCESS_LIMIT,
        check=False,
    )


def failed_once(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    """A non-zero exit with one ``Error`` line naming ``needle`` and no traceback."""
    shown = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode != 0, shown
    assert "Traceback" not in proc.stderr, shown
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and needle in errors[0], shown


def test_schedules_commands(tmp_path: Path, database_url: str) -> None:
    url = ("--database-url", database_url)
    with Client(database_url) as client:
        client.schedules.create("hourly", "ops.rollup", "0 * * * *", tz="Europe/Paris")
        client.schedules.create("nightly", "ops.report", "0 30 2 * * *", backfill=True)
    listed = cli(tmp_path, "schedules", "list", *url)
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split() == [
        "NAME", "WORKFLOW", "CRON", "TZ", "NEXT_FIRE_AT", "LAST_FIRED_AT", "STATE", "QUEUE",
    ]  # fmt: skip
    assert [line.split()[:3] for line in lines] == [
        ["hourly", "ops.rollup", "0"],
        ["nightly", "ops.report", "0"],
    ]
    assert "active" in lines[0] and "Europe/Paris" in lines[0]
    data = json.loads(cli(tmp_path, "schedules", "list", "--json", *url).stdout)
    assert [d["name"] for d in data] == ["hourly", "nightly"]
    assert data[1]["cron"] == "0 30 2 * * *" and data[1]["backfill"] is True
    assert data[1]["next_fire_at"].endswith("02:30:00+00:00")

    assert cli(tmp_path, "schedules", "pause", "hourly", *url).stdout.strip() == "hourly: paused"
    data = json.loads(cli(tmp_path, "schedules", "list", "--json", *url).stdout)
    assert data[0]["paused"] is True and data[0]["state"] == "paused"
    assert cli(tmp_path, "schedules", "resume", "hourly", *url).returncode == 0

    trig = cli(tmp_path, "schedules", "trigger", "nightly", *url)
    assert trig.returncode == 0 and trig.stdout.startswith("schedule:nightly:trigger:")
    back = cli(
        tmp_path, "schedules", "backfill", "nightly", "2026-01-01T00:00", "2026-01-03T23:00",
        "--json", *url,
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert [d["id"] for d in json.loads(back.stdout)] == [
        f"schedule:nightly:2026-01-0{d}T02:30:00Z" for d in (1, 2, 3)
    ]
    again = cli(tmp_path, "schedules", "backfill", "nightly", "2026-01-01", "2026-01-04", *url)
    assert again.returncode == 0 and again.stdout == ""  # nothing new
    assert len(workflow_ids(database_url)) == 4

    # Bad input: one line, non-zero, nothing changed.
    failed_once(cli(tmp_path, "schedules", "pause", "nope", *url), "no schedule named 'nope'")
    bad_time = cli(tmp_path, "schedules", "backfill", "nightly", "yesterday", "now", *url)
    assert bad_time.returncode == 2 and "not an ISO 8601 time" in bad_time.stderr
    failed_once(
        cli(tmp_path, "schedules", "backfill", "nightly", "2026-01-05", "2026-01-01", *url),
        "after end",
    )
    assert cli(tmp_path, "schedules", "delete", "hourly", *url).returncode == 0
    data = json.loads(cli(tmp_path, "schedules", "list", "--json", *url).stdout)
    assert [d["name"] for d in data] == ["nightly"]
    assert len(workflow_ids(database_url)) == 4


def test_schedules_against_a_database_that_is_down(tmp_path: Path) -> None:
    for args in (("list",), ("pause", "x"), ("trigger", "x")):
        failed_once(
            cli(tmp_path, "schedules", *args, "--database-url", CLOSED_PORT_URL),
            "cannot connect",
        )
