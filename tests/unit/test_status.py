"""The workflow state machine's statuses."""

from __future__ import annotations

import msgspec
import pytest

from taskflow import Status
from taskflow.status import FINISHED, RESUMABLE

ALL = [
    "ENQUEUED",
    "DELAYED",
    "PENDING",
    "SUCCESS",
    "ERROR",
    "CANCELLED",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
]


def test_members_are_exactly_the_documented_ones() -> None:
    assert [s.value for s in Status] == ALL
    assert [s.name for s in Status] == ALL


@pytest.mark.parametrize("name", ALL)
def test_status_is_a_str_enum(name: str) -> None:
    status = Status(name)
    assert isinstance(status, str)
    assert status == name
    assert str(status) == name
    assert f"{status}" == name
    assert Status[name] is status
    assert msgspec.json.encode(status) == f'"{name}"'.encode()
    assert msgspec.json.decode(f'"{name}"', type=Status) is status


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="RUNNING"):
        Status("RUNNING")


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        (Status.ENQUEUED, False),
        (Status.DELAYED, False),
        (Status.PENDING, False),
        (Status.SUCCESS, True),
        (Status.ERROR, True),
        (Status.CANCELLED, True),
        (Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED, True),
    ],
)
def test_is_finished(status: Status, finished: bool) -> None:
    assert status.is_finished is finished
    assert (status in FINISHED) is finished


def test_resumable_statuses() -> None:
    assert {Status.CANCELLED, Status.ERROR, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED} == RESUMABLE
    assert RESUMABLE <= FINISHED
    assert Status.SUCCESS not in RESUMABLE
