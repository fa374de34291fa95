"""The README's quickstart really runs: three steps, SIGKILL after step 2, resumed once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def _run_quickstart(cwd: Path, database_url: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TASKFLOW_DATABASE_URL"}
    if database_url is not None:
        env["TASKFLOW_DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _check(out: str) -> None:
    # Each step body prints once: steps 1-2 in the killed process, step 3 after recovery.
    assert out.count("step 1 runs") == 1, out
    assert out.count("step 2 runs") == 1, out
    assert out.count("step 3 runs") == 1, out
    assert "the child process died (exit code -9)" in out, out
    assert "status PENDING" in out, out
    assert "Done: status SUCCESS, attempts 2" in out, out
    assert out.index("killed (SIGKILL)") < out.index("step 3 runs"), out


def test_quickstart_on_the_embedded_sqlite_default(tmp_path: Path) -> None:
    out = _run_quickstart(tmp_path, None)
    _check(out)
    assert (tmp_path / "taskflow.sqlite3").exists()


@pytest.mark.postgres
def test_quickstart_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    out = _run_quickstart(tmp_path, postgres_url)
    _check(out)
    assert not (tmp_path / "taskflow.sqlite3").exists()
