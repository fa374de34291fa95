"""``taskflow worker`` refuses bad input with one clear line on stderr, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .helpers import PROCESS_LIMIT, TASKFLOW_CLI, WORKER_APP, worker_env

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("args", "value"),
    [
        (["worker", "-A", "nosuchmodule"], "nosuchmodule"),
        (["-A", "nosuchmodule", "worker"], "nosuchmodule"),
        (["worker", "-A", "tests.integration"], "tests.integration"),
        (["worker", "-A", "tests.integration.workerapp:nosuchapp"], "nosuchapp"),
        (["worker", "-A", WORKER_APP, "-P", "gevent"], "gevent"),
        (["worker", "-A", WORKER_APP, "-Q", "a,no such queue!"], "no such queue!"),
    ],
    ids=["no-module", "no-module-before-command", "no-app", "no-attribute", "pool", "queue"],
)
def test_bad_worker_arguments_fail_with_one_clear_line(
    tmp_path: Path, args: list[str], value: str
) -> None:
    """Exit code non-zero, one line on stderr naming the bad value, no traceback, and no
    worker ever started."""
    database_url = f"sqlite:///{tmp_path / 'taskflow.sqlite3'}"
    proc = subprocess.run(
        [*TASKFLOW_CLI, *args],
        env=worker_env(database_url, tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PROCESS_LIMIT,
        check=False,
    )
    shown = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode != 0, shown
    assert "Traceback" not in proc.stderr, shown
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, shown
    assert value in lines[0], shown
    assert "ready." not in proc.stdout + proc.stderr
