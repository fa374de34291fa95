"""Durable workflows through the app, on both dialects: direct calls, ``apply`` and its
idempotency key, recorded errors, child workflows, id conflicts, ``taskflow.current()`` and
the durable timeout."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

import taskflow
from taskflow import (
    Status,
    Taskflow,
    TaskflowError,
    WorkflowCancelledError,
    WorkflowConflictError,
    WorkflowError,
)

from .helpers import FakeClock, SimulatedCrash, workflow_ids


class PaymentDeclinedError(Exception):
    """A business error raised by workflow code (importable, so get() re-raises it)."""


class CodedError(Exception):
    """An error built from several arguments."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def test_direct_call_returns_the_result_and_records_success_and_steps(app: Taskflow) -> None:
    seen: list[str] = []

    @app.step(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.workflow(name="wf.direct")
    def direct(x: int) -> dict[str, int]:
        seen.append(taskflow.current().workflow_id)
        return {"sum": add(x, 1), "double": add(x, x)}

    assert direct(2) == {"sum": 3, "double": 4}

    assert len(seen) == 1
    handle = app.retrieve(seen[0])
    info = handle.info()
    assert info.name == "wf.direct"
    assert info.status is Status.SUCCESS
    assert handle.status == "SUCCESS"
    assert handle.ready()
    assert handle.successful()
    assert not handle.failed()
    assert info.attempts == 1
    assert info.error is None
    assert info.parent_id is None
    assert info.app_version == "test-version"
    assert info.executor == app.executor_id
    assert info.started_at is not None
    assert info.finished_at is not None
    assert info.created_at <= info.started_at <= info.finished_at
    steps = handle.steps()
    assert [(s.step_id, s.name, s.status) for s in steps] == [
        (0, "add", Status.SUCCESS),
        (1, "add", Status.SUCCESS),
    ]
    assert all(s.error is None and s.child_workflow_id is None for s in steps)
    assert handle.get() == {"sum": 3, "double": 4}


def test_apply_with_the_same_workflow_id_runs_once(app: Taskflow) -> None:
    bodies: list[int] = []
    effects: list[int] = []

    @app.step(name="effect")
    def effect(n: int) -> int:
        effects.append(n)
        return n * 10

    @app.workflow(name="wf.event")
    def on_event(n: int) -> int:
        bodies.append(n)
        return effect(n)

    first = on_event.apply(args=(1,), workflow_id="evt-9")
    second = on_event.apply(args=(2,), workflow_id="evt-9")
    third = on_event.apply(args=(3,), task_id="evt-9")

    assert bodies == [1]
    assert effects == [1]
    assert first.id == second.id == third.id == "evt-9"
    assert first.get() == second.get() == third.get() == 10
    assert second.info().attempts == 1
    assert len(second.steps()) == 1
    other = on_event.apply(args=(4,), workflow_id="evt-10")
    assert other.get() == 40
    assert effects == [1, 4]


def test_a_workflow_exception_is_recorded_and_reraised_as_its_type(app: Taskflow) -> None:
    @app.step(name="charge")
    def charge(order: int) -> str:
        return f"charged-{order}"

    @app.workflow(name="wf.fails")
    def fails(order: int) -> str:
        charge(order)
        raise PaymentDeclinedError(f"order {order} declined")

    handle = fails.apply(args=(7,), workflow_id="fails-7")

    assert handle.status is Status.ERROR
    assert handle.ready()
    assert handle.failed()
    assert not handle.successful()
    info = handle.info()
    assert info.error is not None
    assert info.error.type_name == f"{__name__}.PaymentDeclinedError"
    assert info.error.message == "order 7 declined"
    assert "Traceback" in info.error.traceback
    assert 'raise PaymentDeclinedError(f"order {order} declined")' in info.error.traceback
    assert [(s.name, s.status) for s in handle.steps()] == [("charge", Status.SUCCESS)]
    with pytest.raises(PaymentDeclinedError, match="order 7 declined"):
        handle.get()
    returned: object = handle.get(propagate=False)
    assert isinstance(returned, PaymentDeclinedError)
    assert returned.args == ("order 7 declined",)
    # Calling it directly raises it too (and records it as well).
    with pytest.raises(PaymentDeclinedError, match="order 8 declined"):
        fails(8)


def test_an_exception_with_several_arguments_comes_back_whole(app: Taskflow) -> None:
    @app.workflow(name="wf.coded")
    def coded() -> None:
        raise CodedError(402, "payment required")

    with pytest.raises(CodedError) as caught:
        coded.apply().get()
    assert (caught.value.code, caught.value.reason) == (402, "payment required")


def test_an_exception_class_not_importable_at_get_time_becomes_workflow_error(
    app: Taskflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("tf_vanishing_errors")

    class VanishingError(Exception):
        pass

    VanishingError.__module__ = module.__name__
    VanishingError.__qualname__ = "VanishingError"
    module.__dict__["VanishingError"] = VanishingError
    monkeypatch.setitem(sys.modules, module.__name__, module)

    @app.workflow(name="wf.vanishing")
    def vanishing() -> None:
        raise VanishingError("gone soon")

    handle = vanishing.apply()
    assert isinstance(handle.get(propagate=False), VanishingError)  # importable: itself

    monkeypatch.delitem(sys.modules, module.__name__)

    with pytest.raises(WorkflowError) as caught:
        handle.get()
    err = caught.value
    assert err.type_name == "tf_vanishing_errors.VanishingError"
    assert err.message == "gone soon"
    assert "gone soon" in str(err)
    assert 'raise VanishingError("gone soon")' in err.remote_traceback
    assert isinstance(handle.get(propagate=False), WorkflowError)


def test_a_step_error_is_checkpointed_and_catchable_in_the_workflow(app: Taskflow) -> None:
    @app.step(name="lookup")
    def lookup(key: str) -> str:
        raise KeyError(key)

    @app.workflow(name="wf.catches")
    def catches() -> str:
        try:
            return lookup("missing")
        except KeyError as exc:
            return f"fallback for {exc.args[0]}"

    handle = catches.apply()
    assert handle.get() == "fallback for missing"
    [step] = handle.steps()
    assert step.status is Status.ERROR
    assert step.error is not None
    assert step.error.type_name == "builtins.KeyError"


def test_a_workflow_id_taken_by_another_workflow_name_conflicts(app: Taskflow) -> None:
    ran: list[str] = []

    @app.workflow(name="wf.a")
    def wf_a() -> str:
        ran.append("a")
        return "a"

    @app.workflow(name="wf.b")
    def wf_b() -> str:
        ran.append("b")
        return "b"

    assert wf_a.apply(workflow_id="shared").get() == "a"
    with pytest.raises(WorkflowConflictError, match=r"'shared'.*'wf\.a'.*'wf\.b'"):
        wf_b.apply(workflow_id="shared")
    assert ran == ["a"]
    assert app.retrieve("shared").info().name == "wf.a"
    assert app.retrieve("shared").get() == "a"


def test_current_tells_workflow_and_step_who_runs(app: Taskflow) -> None:
    def snapshot() -> dict[str, Any]:
        c = taskflow.current()
        return {
            "workflow_id": c.workflow_id,
            "name": c.name,
            "step_id": c.step_id,
            "attempt": c.attempt,
            "user": c.user,
            "app_version": c.app_version,
        }

    @app.step(name="probe")
    def probe() -> dict[str, Any]:
        return snapshot()

    @app.workflow(name="wf.who")
    def who() -> dict[str, Any]:
        before = snapshot()
        first = probe()
        second = probe()
        return {"workflow": before, "first": first, "second": second}

    with pytest.raises(TaskflowError, match="outside a workflow"):
        taskflow.current()

    out = who.apply(workflow_id="who-1", user="alice").get()

    common = {"workflow_id": "who-1", "name": "wf.who", "attempt": 1, "user": "alice"}
    common["app_version"] = "test-version"
    assert out["workflow"] == {**common, "step_id": None}
    assert out["first"] == {**common, "step_id": 0}
    assert out["second"] == {**common, "step_id": 1}
    with pytest.raises(TaskflowError, match="outside a workflow"):
        taskflow.current()


def test_child_workflow_is_recorded_as_a_step_of_its_parent(
    app: Taskflow, database_url: str
) -> None:
    child_runs: list[int] = []

    @app.step(name="double")
    def double(x: int) -> int:
        return 2 * x

    @app.workflow(name="wf.child")
    def child(x: int) -> int:
        child_runs.append(x)
        return double(x)

    @app.workflow(name="wf.parent")
    def parent(x: int) -> list[int]:
        a = double(x)
        b = child(a)
        explicit = child.apply(args=(b,), workflow_id="explicit-child")
        c = double(explicit.get())
        return [a, b, c]

    handle = parent.apply(args=(1,), workflow_id="p-1")

    assert handle.get() == [2, 4, 16]
    steps = handle.steps()
    # get() inside a workflow is a recorded step too (its deadline step is only written when
    # it has to wait).
    names = ["double", "wf.child", "wf.child", "taskflow.get_result", "double"]
    assert [s.name for s in steps] == names
    child_id = steps[1].child_workflow_id
    assert child_id is not None
    assert steps[2].child_workflow_id == "explicit-child"
    assert steps[3].child_workflow_id == "explicit-child"
    assert steps[0].child_workflow_id is None
    assert workflow_ids(database_url) == sorted(["p-1", child_id, "explicit-child"])
    for cid, result in ((child_id, 4), ("explicit-child", 8)):
        ch = app.retrieve(cid)
        assert ch.info().parent_id == "p-1"
        assert ch.info().status is Status.SUCCESS
        assert [s.name for s in ch.steps()] == ["double"]
        assert ch.get() == result
    assert child_runs == [2, 4]


def test_a_failing_child_raises_its_error_in_the_parent(app: Taskflow) -> None:
    @app.workflow(name="wf.bad_child")
    def bad_child(order: int) -> None:
        raise PaymentDeclinedError(f"child {order} declined")

    @app.workflow(name="wf.parent_of_bad")
    def parent() -> str:
        try:
            bad_child(3)
        except PaymentDeclinedError as exc:
            return f"parent saw: {exc}"
        return "no error"

    handle = parent.apply()
    assert handle.get() == "parent saw: child 3 declined"
    [step] = handle.steps()
    assert step.status is Status.ERROR
    assert step.error is not None
    assert step.error.type_name == f"{__name__}.PaymentDeclinedError"
    assert step.child_workflow_id is not None
    with pytest.raises(PaymentDeclinedError):
        app.retrieve(step.child_workflow_id).get()


def test_a_child_that_finished_is_not_run_again_when_the_parent_recovers(
    app: Taskflow,
) -> None:
    child_steps: list[int] = []
    crash = [True]

    @app.step(name="child_work")
    def child_work(x: int) -> int:
        child_steps.append(x)
        return x + 100

    @app.workflow(name="wf.replayed_child")
    def child(x: int) -> int:
        return child_work(x)

    @app.workflow(name="wf.crashing_parent")
    def parent(x: int) -> int:
        value = child(x)
        if crash:
            crash.clear()
            raise SimulatedCrash
        return value + 1

    with pytest.raises(SimulatedCrash):
        parent.apply(args=(1,), workflow_id="crashing-parent")
    assert app.retrieve("crashing-parent").status is Status.PENDING

    [recovered] = app.recover()

    assert recovered.id == "crashing-parent"
    assert recovered.get() == 102
    assert child_steps == [1]
    assert recovered.info().attempts == 2


def test_durable_timeout_cancels_the_workflow_at_its_next_step(
    make_app: Callable[..., Taskflow],
) -> None:
    clock = FakeClock()
    app = make_app(clock=clock)
    ran: list[str] = []

    @app.step(name="first")
    def first() -> int:
        ran.append("first")
        return 1

    @app.step(name="second")
    def second(x: int) -> int:
        ran.append("second")
        return x + 1

    @app.workflow(name="wf.deadline", timeout=10)
    def deadline() -> int:
        a = first()
        clock.advance(11)
        return second(a)

    handle = deadline.apply(workflow_id="deadline-1")

    assert handle.status is Status.CANCELLED
    assert handle.ready()
    assert ran == ["first"]
    assert [s.name for s in handle.steps()] == ["first"]
    with pytest.raises(WorkflowCancelledError, match="deadline-1"):
        handle.get()
    assert isinstance(handle.get(propagate=False), WorkflowCancelledError)
    with pytest.raises(WorkflowCancelledError):
        deadline()

    # A longer timeout given at the call overrides the decorator's: it runs through.
    ran.clear()
    assert deadline.apply(workflow_id="deadline-2", timeout=60).get() == 2
    assert ran == ["first", "second"]


def test_durable_timeout_survives_a_crash(make_app: Callable[..., Taskflow]) -> None:
    clock = FakeClock()
    app = make_app(clock=clock)
    ran: list[str] = []
    crash = [True]

    @app.step(name="before")
    def before() -> int:
        ran.append("before")
        return 1

    @app.step(name="after")
    def after(x: int) -> int:
        ran.append("after")
        return x

    @app.workflow(name="wf.deadline_crash")
    def wf() -> int:
        a = before()
        if crash:
            crash.clear()
            raise SimulatedCrash
        return after(a)

    with pytest.raises(SimulatedCrash):
        wf.apply(workflow_id="deadline-crash", timeout=30)
    clock.advance(31)

    [handle] = app.recover()

    assert handle.status is Status.CANCELLED
    with pytest.raises(WorkflowCancelledError):
        handle.get()
    assert ran == ["before"]


def test_calling_a_crashed_workflow_again_in_its_process_counts_an_attempt(
    make_app: Callable[..., Taskflow],
) -> None:
    app = make_app()
    ran: list[str] = []

    @app.step(name="once")
    def once() -> int:
        ran.append("once")
        return 1

    @app.workflow(name="wf.crash_again", max_recovery_attempts=1)
    def wf() -> int:
        once()
        raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        wf.apply(workflow_id="crash-again")
    assert app.retrieve("crash-again").info().attempts == 1
    # Calling it again takes it over (attempt 2), replaying the checkpointed step.
    with pytest.raises(SimulatedCrash):
        wf.apply(workflow_id="crash-again")
    handle = app.retrieve("crash-again")
    assert handle.info().attempts == 2
    assert handle.status is Status.PENDING
    # A third call is one recovery too many: it is parked, not run.
    parked = wf.apply(workflow_id="crash-again")
    assert parked.status is Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED
    assert parked.info().attempts == 3
    with pytest.raises(taskflow.MaxRecoveryAttemptsExceededError):
        parked.get()
    assert ran == ["once"]
