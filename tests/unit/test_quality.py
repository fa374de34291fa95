"""The repository's own checks, run as part of the normal test suite: lint, format, types and
the layer contract. Each runs from the repository root exactly as CI and a developer would."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    """A console script installed next to this interpreter (else on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


CHECKS = {
    "ruff-check": lambda: [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
    "ruff-format": lambda: [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
    "mypy": lambda: [sys.executable, "-m", "mypy"],
    "lint-imports": lambda: [_tool("lint-imports"), "--no-cache"],
}


@pytest.mark.quality
@pytest.mark.parametrize("check", list(CHECKS))
def test_repository_check_passes(check: str) -> None:
    command = CHECKS[check]()
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=280, check=False
    )
    assert proc.returncode == 0, (
        f"`{' '.join(command)}` exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )
