"""The benchmark stays runnable: a quick run on both dialects writes a report with figures.

Figures are not asserted (speed is the benchmark's business, never a test's): only that the
command works end to end and produces the table it promises.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_quick_benchmark_run_writes_a_report(tmp_path: Path, postgres_admin_url: str) -> None:
    output = tmp_path / "benchmarks.md"
    env = {**os.environ, "TASKFLOW_BENCH_POSTGRES_URL": postgres_admin_url}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = output.read_text(encoding="utf-8")
    assert "per-step overhead" in report
    assert "PostgreSQL" in report
    assert "SQLite" in report
