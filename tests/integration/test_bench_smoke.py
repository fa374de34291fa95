"""The benchmark stays runnable: a quick run of every suite on Postgres, and of the cheap ones
on SQLite, writes a report with figures (every suite on both dialects would take the suite's
longest test twice over: the SQLite half of the worker suites runs the same benchmark code).

Figures are not asserted (speed is the benchmark's business, never a test's): only that the
command works end to end and produces the tables it promises. The throughput, latency, queues
and durable suites start real ``taskflow worker`` processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
@pytest.mark.slow
def test_quick_benchmark_run_writes_a_report(tmp_path: Path, postgres_admin_url: str) -> None:
    output = tmp_path / "benchmarks.md"
    env = {**os.environ, "TASKFLOW_BENCH_POSTGRES_URL": postgres_admin_url}

    def bench(*args: str) -> str:
        out = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.md"
        done = subprocess.run(
            [sys.executable, "-m", "bench", "--quick", "--output", str(out), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return out.read_text(encoding="utf-8")

    lite = bench("--dialect", "sqlite", "--suite", "direct", "--suite", "latency")
    assert "SQLite" in lite and "enqueue-to-done" in lite and "per-step overhead" in lite
    report = bench("--dialect", "postgres")
    output.write_text(report, encoding="utf-8")
    for suite in ("direct", "enqueue", "throughput", "latency", "queues", "durable", "listing"):
        assert f"<!-- bench:{suite}:begin" in report, suite
        assert f"<!-- bench:{suite}:end -->" in report, suite
    assert "per-step overhead" in report
    assert "`delay_many` of 500" in report
    assert "500 no-op workflows" in report
    assert "500 workflows of 3 no-op steps" in report
    assert "enqueue-to-done" in report
    assert "ratio to the unlimited queue" in report
    assert "rate accuracy" in report
    assert "send-to-recv, one way, no wait parks" in report
    assert "every wait parked" in report
    assert "200 sleeping workflows parked" in report
    assert "rows per parked workflow" in report
    assert "<!-- bench:beat:begin" in report
    assert "<!-- bench:beat:end -->" in report
    assert "**enqueue lateness**" in report
    assert "**failover: kill to takeover**" in report
    assert "every page with one filter (or none) under 50 ms" in report
    assert "PostgreSQL" in report
