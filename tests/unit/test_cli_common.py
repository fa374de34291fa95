"""What every command shares: durations, aligned tables and JSON output."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
import pytest

from taskflow.cli.common import emit, parse_duration, table_lines
from taskflow.status import Status


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 604_800),
        ("12h", 43_200),
        ("30m", 1_800),
        ("45s", 45),
        ("1w", 604_800),
        ("1d12h", 129_600),
        ("90", 90),
        ("1.5h", 5_400),
        ("250ms", 0.25),
        (" 2D ", 172_800),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "7x", "d7", "7d x", "-1", "0", "0s", "inf", "nan", "7 days"])
def test_bad_durations_are_refused_naming_the_text(text: str) -> None:
    with pytest.raises(click.BadParameter, match=repr(text).replace("'", ".")):
        parse_duration(text)


def test_tables_are_aligned_and_json_keeps_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    rows: list[dict[str, object]] = [
        {"id": "a", "status": Status.SUCCESS, "at": when, "queue": None, "extra": 1},
        {"id": "longer-id", "status": Status.ENQUEUED, "at": None, "queue": "q", "extra": 2},
    ]
    lines = table_lines(rows, ("id", "status", "at", "queue"))
    assert lines[0].split() == ["ID", "STATUS", "AT", "QUEUE"]
    assert lines[1].split() == ["a", "SUCCESS", "2026-01-02", "03:04:05+00:00", "-"]
    # Every column starts at the same offset on every line.
    starts = {line.index(line.split()[1]) for line in lines}
    assert len(starts) == 1
    emit(rows, ("id",), as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert data[0] == {
        "id": "a",
        "status": "SUCCESS",
        "at": "2026-01-02T03:04:05+00:00",
        "queue": None,
        "extra": 1,
    }
