"""Steps through the app, on both dialects: retries with backoff (on an injected clock),
timeouts, nesting, steps outside workflows, and what a step may not do."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import taskflow
from taskflow import Status, Taskflow, TaskflowError

from .helpers import FakeClock, wait_for, workflow_ids


@pytest.fixture
def clock() -> FakeClock:
    """The injected clock: retry backoff is recorded, never slept."""
    return FakeClock()


@pytest.fixture
def clocked_app(make_app: Callable[..., Taskflow], clock: FakeClock) -> Taskflow:
    """An app whose time is :func:`clock`."""
    return make_app("clocked", clock=clock)


def test_a_step_is_retried_with_growing_capped_backoff_and_checkpointed_once(
    clocked_app: Taskflow, clock: FakeClock
) -> None:
    app = clocked_app
    calls: list[int] = []

    @app.step(
        name="flaky",
        max_retries=5,
        retry_backoff=1.0,
        retry_backoff_factor=2.0,
        retry_backoff_max=5.0,
        retry_jitter=False,
    )
    def flaky() -> str:
        calls.append(len(calls) + 1)
        if len(calls) <= 5:
            raise ConnectionError(f"try {len(calls)}")
        return f"ok after {len(calls)} tries"

    @app.workflow(name="wf.flaky")
    def wf() -> str:
        return flaky()

    handle = wf.apply()

    assert handle.get() == "ok after 6 tries"
    assert calls == [1, 2, 3, 4, 5, 6]
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]
    [step] = handle.steps()  # only the final outcome is checkpointed
    assert (step.step_id, step.name, step.status) == (0, "flaky", Status.SUCCESS)
    assert step.started_at is not None
    assert step.finished_at is not None
    assert (step.finished_at - step.started_at).total_seconds() == pytest.approx(17.0)


def test_a_step_that_keeps_failing_records_its_last_error_once(
    clocked_app: Taskflow, clock: FakeClock
) -> None:
    app = clocked_app
    calls: list[int] = []

    @app.step(name="down", max_retries=2, retry_backoff=0.5, retry_jitter=False)
    def down() -> None:
        calls.append(1)
        raise ConnectionError(f"try {len(calls)}")

    @app.workflow(name="wf.down")
    def wf() -> None:
        down()

    handle = wf.apply()

    assert len(calls) == 3
    assert clock.sleeps == [0.5, 1.0]
    with pytest.raises(ConnectionError, match="try 3"):
        handle.get()
    [step] = handle.steps()
    assert step.status is Status.ERROR
    assert step.error is not None
    assert (step.error.type_name, step.error.message) == ("builtins.ConnectionError", "try 3")


def test_autoretry_for_picks_which_errors_are_retried(
    clocked_app: Taskflow, clock: FakeClock
) -> None:
    app = clocked_app
    raised: list[type[Exception]] = []
    plan: list[type[Exception]] = []

    @app.step(name="picky", max_retries=3, retry_jitter=False, autoretry_for=(OSError,))
    def picky() -> str:
        if plan:
            exc_type = plan.pop(0)
            raised.append(exc_type)
            raise exc_type("boom")
        return "done"

    @app.workflow(name="wf.picky")
    def wf() -> str:
        return picky()

    # A subclass of a listed error is retried.
    plan[:] = [ConnectionRefusedError, TimeoutError]
    assert wf.apply().get() == "done"
    assert raised == [ConnectionRefusedError, TimeoutError]
    assert len(clock.sleeps) == 2

    # Anything else fails at once, without a retry.
    raised.clear()
    clock.sleeps.clear()
    plan[:] = [ValueError]
    handle = wf.apply()
    with pytest.raises(ValueError, match="boom"):
        handle.get()
    assert raised == [ValueError]
    assert clock.sleeps == []
    assert plan == []
    assert [s.status for s in handle.steps()] == [Status.ERROR]


def test_retry_jitter_keeps_delays_between_half_and_all_of_the_backoff(
    clocked_app: Taskflow, clock: FakeClock
) -> None:
    app = clocked_app
    calls: list[int] = []

    @app.step(
        name="jittery",
        max_retries=6,
        retry_backoff=0.5,
        retry_backoff_factor=3.0,
        retry_backoff_max=4.0,
    )
    def jittery() -> int:
        calls.append(1)
        if len(calls) <= 6:
            raise OSError("again")
        return len(calls)

    @app.workflow(name="wf.jittery")
    def wf() -> int:
        return jittery()

    assert wf.apply().get() == 7
    full = [0.5, 1.5, 4.0, 4.0, 4.0, 4.0]
    assert len(clock.sleeps) == len(full)
    for delay, cap in zip(clock.sleeps, full, strict=True):
        assert cap / 2 <= delay <= cap


def test_a_step_timeout_abandons_the_step_with_timeout_error(app: Taskflow) -> None:
    release = threading.Event()
    late_finish = threading.Event()
    calls: list[int] = []

    @app.step(name="slow", timeout=0.2)
    def slow() -> str:
        calls.append(1)
        release.wait(30)
        late_finish.set()
        return "late"

    @app.workflow(name="wf.slow")
    def wf() -> str:
        try:
            return slow()
        except TimeoutError as exc:
            return f"gave up: {exc}"

    @app.workflow(name="wf.slow_uncaught")
    def uncaught() -> str:
        return slow()

    try:
        handle = wf.apply()
        result = handle.get()
        assert result.startswith("gave up: step 'slow'")
        assert "0.2s" in result
        assert handle.status is Status.SUCCESS
        [step] = handle.steps()
        assert step.status is Status.ERROR
        assert step.error is not None
        assert step.error.type_name == "builtins.TimeoutError"
        with pytest.raises(TimeoutError, match="abandoned"):
            uncaught.apply().get()
    finally:
        release.set()
    wait_for(late_finish.is_set, "the abandoned step to finish")
    assert calls == [1, 1]
    # The abandoned step's late result changes nothing.
    assert [s.status for s in handle.steps()] == [Status.ERROR]
    assert handle.get() == result


def test_a_step_outside_a_workflow_is_a_plain_function(app: Taskflow, database_url: str) -> None:
    calls: list[int] = []

    @app.step(name="plain", max_retries=3)
    def plain(x: int) -> int:
        calls.append(x)
        with pytest.raises(TaskflowError, match="outside a workflow"):
            taskflow.current()
        if x < 0:
            raise ValueError("negative")
        return x * 3

    app.migrate()
    assert plain(2) == 6
    with pytest.raises(ValueError, match="negative"):
        plain(-1)
    assert calls == [2, -1]  # no retries either: a plain call
    assert workflow_ids(database_url) == []


def test_a_step_calling_a_step_runs_it_as_part_of_itself(app: Taskflow) -> None:
    inner_calls: list[int | None] = []

    @app.step(name="inner")
    def inner(x: int) -> int:
        inner_calls.append(taskflow.current().step_id)
        return x + 1

    @app.step(name="outer")
    def outer(x: int) -> int:
        return inner(inner(x)) * 10

    @app.workflow(name="wf.nested")
    def wf(x: int) -> int:
        return outer(x) + inner(0)

    handle = wf.apply(args=(1,))

    assert handle.get() == 31
    assert [(s.step_id, s.name) for s in handle.steps()] == [(0, "outer"), (1, "inner")]
    assert inner_calls == [0, 0, 1]


def test_starting_a_workflow_inside_a_step_is_refused(app: Taskflow, database_url: str) -> None:
    ran: list[str] = []

    @app.workflow(name="wf.inner")
    def inner() -> int:
        ran.append("inner")
        return 1

    @app.step(name="starter")
    def starter() -> int:
        return inner()

    @app.workflow(name="wf.outer")
    def outer() -> int:
        return starter()

    handle = outer.apply(workflow_id="outer-1")

    with pytest.raises(TaskflowError) as caught:
        handle.get()
    assert type(caught.value) is TaskflowError
    message = str(caught.value)
    assert "starting workflow 'wf.inner' is not allowed inside a step" in message
    assert "'outer-1'" in message
    [step] = handle.steps()
    assert (step.name, step.status) == ("starter", Status.ERROR)
    assert ran == []
    assert workflow_ids(database_url) == ["outer-1"]
