"""Replay and recovery inside one process, on both dialects.

A :class:`SimulatedCrash` (a ``BaseException``) leaves a workflow PENDING exactly as a dead
process would; ``app.recover()`` then resumes it here. The real-process version of these
guarantees is in ``test_crash_recovery.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

import taskflow
from taskflow import (
    MaxRecoveryAttemptsExceededError,
    NonDeterministicWorkflowError,
    Status,
    Taskflow,
)

from .helpers import SimulatedCrash


@dataclass(frozen=True)
class Receipt:
    """A rich step result: it must come back as itself, not as a dict."""

    order: int
    amount: Decimal
    paid_at: datetime
    ref: UUID


RECEIPT = Receipt(
    order=7,
    amount=Decimal("12.50"),
    paid_at=datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC),
    ref=UUID("12345678-1234-5678-1234-567812345678"),
)


def test_replayed_steps_return_their_checkpointed_values_as_rich_types(
    app: Taskflow,
) -> None:
    runs: list[str] = []
    seen: list[tuple[Any, ...]] = []
    crash = [True]

    @app.step(name="pay")
    def pay(order: int, due: date) -> Receipt:
        runs.append("pay")
        assert isinstance(due, date)
        return RECEIPT

    @app.step(name="stamp")
    def stamp() -> datetime:
        runs.append("stamp")
        return datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    @app.workflow(name="wf.rich")
    def rich(order: int, due: date) -> Receipt:
        receipt = pay(order, due)
        stamped = stamp()
        seen.append((due, receipt, stamped, taskflow.current().attempt))
        if crash:
            crash.clear()
            raise SimulatedCrash
        return receipt

    with pytest.raises(SimulatedCrash):
        rich.apply(args=(7, date(2024, 5, 1)), workflow_id="rich-1")
    handle = app.retrieve("rich-1")
    assert handle.status is Status.PENDING
    assert [s.name for s in handle.steps()] == ["pay", "stamp"]

    recovered = app.recover()

    assert [h.id for h in recovered] == ["rich-1"]
    assert runs == ["pay", "stamp"]  # not run again
    first, second = seen
    assert first == (date(2024, 5, 1), RECEIPT, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), 1)
    assert second == (*first[:3], 2)
    for due, receipt, stamped, _ in seen:
        assert type(due) is date
        assert type(receipt) is Receipt
        assert type(receipt.amount) is Decimal
        assert type(receipt.ref) is UUID
        assert type(stamped) is datetime
        assert stamped.tzinfo is not None
    result = recovered[0].get()
    assert result == RECEIPT
    assert type(result) is Receipt
    info = handle.info()
    assert (info.status, info.attempts) == (Status.SUCCESS, 2)


def test_a_recorded_step_error_is_replayed_not_rerun(app: Taskflow) -> None:
    runs: list[int] = []
    crash = [True]

    @app.step(name="fragile")
    def fragile() -> None:
        runs.append(1)
        raise LookupError("recorded failure")

    @app.workflow(name="wf.error_replay")
    def wf() -> str:
        try:
            fragile()
        except LookupError as exc:
            outcome = f"handled {exc}"
        if crash:
            crash.clear()
            raise SimulatedCrash
        return outcome

    with pytest.raises(SimulatedCrash):
        wf.apply(workflow_id="error-replay")
    [handle] = app.recover()
    assert handle.get() == "handled recorded failure"
    assert runs == [1]


def test_replay_that_calls_a_different_step_is_non_deterministic(
    make_app: Callable[..., Taskflow],
) -> None:
    old = make_app("old")
    new_runs: list[str] = []

    @old.step(name="reserve")
    def reserve() -> str:
        return "reserved"

    @old.workflow(name="wf.evolving")
    def v1() -> str:
        reserve()
        raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        v1.apply(workflow_id="evolving-1")

    # The code changed (same app version) while the workflow was in flight.
    new = make_app("new")

    @new.step(name="charge")
    def charge() -> str:
        new_runs.append("charge")
        return "charged"

    @new.workflow(name="wf.evolving")
    def v2() -> str:
        return charge()

    handles = new.recover()

    assert [h.id for h in handles] == ["evolving-1"]
    handle = handles[0]
    assert handle.status is Status.ERROR
    assert new_runs == []
    info = handle.info()
    assert info.error is not None
    assert info.error.type_name == "taskflow.errors.NonDeterministicWorkflowError"
    assert "'charge'" in info.error.message
    assert "'reserve'" in info.error.message
    with pytest.raises(NonDeterministicWorkflowError, match="evolving-1"):
        handle.get()
    assert [s.name for s in handle.steps()] == ["reserve"]


def test_a_workflow_of_another_app_version_is_not_recovered(
    make_app: Callable[..., Taskflow],
) -> None:
    runs: list[str] = []

    def register(app: Taskflow) -> taskflow.Workflow[[], str]:
        @app.workflow(name="wf.versioned")
        def versioned() -> str:
            runs.append(app.app_version)
            if len(runs) == 1:
                raise SimulatedCrash
            return f"finished on {app.app_version}"

        return versioned

    v1 = make_app("v1", app_version="v1")
    with pytest.raises(SimulatedCrash):
        register(v1).apply(workflow_id="versioned-1")

    v2 = make_app("v2", app_version="v2")
    register(v2)
    assert v2.recover() == []
    handle = v2.retrieve("versioned-1")
    assert handle.status is Status.PENDING
    assert handle.info().attempts == 1
    assert handle.info().app_version == "v1"
    assert runs == ["v1"]

    # Its own version does recover it.
    v1_again = make_app("v1-again", app_version="v1")
    register(v1_again)
    [recovered] = v1_again.recover()
    assert recovered.get() == "finished on v1"
    assert handle.info().attempts == 2


@pytest.mark.parametrize("max_recovery_attempts", [0, 2])
def test_a_workflow_that_keeps_crashing_is_parked(
    app: Taskflow, max_recovery_attempts: int
) -> None:
    runs: list[int] = []

    @app.workflow(name="wf.doomed", max_recovery_attempts=max_recovery_attempts)
    def doomed() -> None:
        runs.append(taskflow.current().attempt)
        raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        doomed.apply(workflow_id="doomed")
    for _ in range(max_recovery_attempts):
        with pytest.raises(SimulatedCrash):
            app.recover()
        assert app.retrieve("doomed").status is Status.PENDING

    [parked] = app.recover()

    assert runs == list(range(1, max_recovery_attempts + 2))
    assert parked.id == "doomed"
    assert parked.status is Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED
    assert parked.failed()
    assert parked.info().attempts == max_recovery_attempts + 2
    with pytest.raises(MaxRecoveryAttemptsExceededError, match="'doomed'"):
        parked.get()
    assert app.recover() == []  # parked is final until resumed


def test_max_recovery_attempts_counts_claims_by_other_executors(app: Taskflow) -> None:
    """Attempts raised through the broker's guarded claim (as dead executors taking it over
    would) count against the limit."""
    runs: list[int] = []

    @app.workflow(name="wf.claimed", max_recovery_attempts=3)
    def claimed() -> str:
        runs.append(taskflow.current().attempt)
        if len(runs) == 1:
            raise SimulatedCrash
        return "ran"

    with pytest.raises(SimulatedCrash):
        claimed.apply(workflow_id="claimed")
    me = app.executor_id
    now = 1_700_000_000_000
    assert app.broker.claim_for_recovery("claimed", "someone-else", me, now) is None
    for _ in range(3):
        row = app.broker.claim_for_recovery("claimed", me, me, now)
        assert row is not None
    assert app.retrieve("claimed").info().attempts == 4

    [parked] = app.recover()  # attempt 5: four recoveries, one more than allowed

    assert parked.status is Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED
    assert runs == [1]


def test_get_with_a_timeout_on_a_running_workflow_raises_timeout_error(
    app: Taskflow,
) -> None:
    @app.workflow(name="wf.stuck")
    def stuck() -> None:
        raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        stuck.apply(workflow_id="stuck")
    handle = app.retrieve("stuck")
    with pytest.raises(TimeoutError, match="'stuck'"):
        handle.get(timeout=0.05)
    assert not handle.ready()
