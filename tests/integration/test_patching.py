"""Patching: upgrading the code of workflows that are in flight, on both dialects.

The story every test tells is the one docs/patching.md walks through. A shipping workflow
reserves stock, prints a label and notifies the customer; the label step changes carrier:

- v1 prints ``old_label``;
- v2 branches on ``taskflow.patch("new-carrier")``: ``new_label`` for workflows that reach
  that point on v2, ``old_label`` for those that had already passed it on v1;
- v3 keeps ``taskflow.deprecate_patch("new-carrier")`` and only ``new_label``;
- v4 drops the call.

Every deploy keeps the same app version (``make_app``'s ``test-version``), as users who
patch do, so each deploy recovers what the previous one left. A :class:`SimulatedCrash` leaves
a workflow PENDING mid-way, as a dead process would, and the next deploy's ``app.recover()``
resumes it in this process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import taskflow
from taskflow import NonDeterministicWorkflowError, Status, Taskflow, TaskflowError, Workflow
from taskflow.models import StepRow

from .helpers import SimulatedCrash

NAME = "shop.ship"
PATCH = "new-carrier"
MARKER = "taskflow.patch:new-carrier"
EXPRESS = "express"
EXPRESS_MARKER = "taskflow.patch:express"


@dataclass
class Shop:
    """What happens outside the database: which step bodies ran, and where to crash."""

    make_app: Callable[..., Taskflow]
    runs: list[tuple[str, str]] = field(default_factory=list)
    """(workflow id, step name), one per execution of a step body."""
    crash_at: dict[str, str] = field(default_factory=dict)
    """workflow id -> the point ("reserved" or "labelled") where its next run dies."""

    def ran(self, workflow_id: str) -> list[str]:
        """The step bodies that ran for one workflow, in order."""
        return [step for wid, step in self.runs if wid == workflow_id]

    def crash_point(self, point: str) -> None:
        """Die here, once, if the test asked for it."""
        workflow_id = taskflow.current().workflow_id
        if self.crash_at.get(workflow_id) == point:
            del self.crash_at[workflow_id]
            raise SimulatedCrash

    def deploy(self, version: str) -> Workflow[[int], str]:
        """A new process running ``version`` of the shipping code (same app version)."""
        app = self.make_app(version)
        runs = self.runs

        def record(step: str) -> None:
            runs.append((taskflow.current().workflow_id, step))

        @app.step(name="reserve")
        def reserve(order: int) -> None:
            record("reserve")

        @app.step(name="old_label")
        def old_label(order: int) -> str:
            record("old_label")
            return f"old-{order}"

        @app.step(name="new_label")
        def new_label(order: int) -> str:
            record("new_label")
            return f"new-{order}"

        @app.step(name="express_label")
        def express_label(order: int) -> str:
            record("express_label")
            return f"express-{order}"

        @app.step(name="notify")
        def notify(label: str) -> str:
            record("notify")
            return f"sent {label}"

        def label_v1(order: int) -> str:
            return old_label(order)

        def label_v2(order: int) -> str:
            if taskflow.patch(PATCH):
                return new_label(order)
            return old_label(order)

        def label_v3(order: int) -> str:
            taskflow.deprecate_patch(PATCH)
            return new_label(order)

        def label_v4(order: int) -> str:
            return new_label(order)

        def label_stacked(order: int) -> str:
            # A second patch on top of the first: the newest check comes first.
            if taskflow.patch(EXPRESS):
                return express_label(order)
            if taskflow.patch(PATCH):
                return new_label(order)
            return old_label(order)

        label = {
            "v1": label_v1,
            "v2": label_v2,
            "v3": label_v3,
            "v4": label_v4,
            "stacked": label_stacked,
        }[version]

        @app.workflow(name=NAME)
        def ship(order: int) -> str:
            reserve(order)
            self.crash_point("reserved")
            printed = label(order)
            self.crash_point("labelled")
            return notify(printed)

        return ship

    def start(self, ship: Workflow[[int], str], workflow_id: str, order: int, crash: str) -> None:
        """Start a workflow that dies at ``crash``, leaving it PENDING."""
        self.crash_at[workflow_id] = crash
        with pytest.raises(SimulatedCrash):
            ship.apply(args=(order,), workflow_id=workflow_id)


@pytest.fixture
def shop(make_app: Callable[..., Taskflow]) -> Shop:
    """The shipping story on this test's database."""
    return Shop(make_app)


def recovered(app_ship: Workflow[[int], str]) -> dict[str, Any]:
    """Recover everything the dead deploys left, on the deploy of ``app_ship``, by id."""
    return {h.id: h for h in app_ship.app.recover()}


def step_names(ship: Workflow[[int], str], workflow_id: str) -> list[str]:
    """The names of a workflow's recorded steps, as ``handle.steps()`` shows them."""
    return [s.name for s in ship.app.retrieve(workflow_id).steps()]


def test_v2_replays_in_flight_v1_workflows_down_the_old_branch(shop: Shop) -> None:
    v1 = shop.deploy("v1")
    shop.start(v1, "past-the-label", 1, crash="labelled")
    shop.start(v1, "before-the-label", 2, crash="reserved")
    assert step_names(v1, "past-the-label") == ["reserve", "old_label"]
    assert step_names(v1, "before-the-label") == ["reserve"]

    v2 = shop.deploy("v2")
    handles = recovered(v2)

    assert set(handles) == {"past-the-label", "before-the-label"}
    # It had printed the old label: the old branch replays it, and no marker is written.
    assert handles["past-the-label"].get() == "sent old-1"
    assert shop.ran("past-the-label") == ["reserve", "old_label", "notify"]
    assert step_names(v2, "past-the-label") == ["reserve", "old_label", "notify"]
    # It had not got that far on v1: it takes the new branch and records the marker.
    assert handles["before-the-label"].get() == "sent new-2"
    assert shop.ran("before-the-label") == ["reserve", "new_label", "notify"]
    assert step_names(v2, "before-the-label") == ["reserve", MARKER, "new_label", "notify"]


def test_a_new_v2_workflow_records_the_marker_and_replays_it(shop: Shop) -> None:
    v2 = shop.deploy("v2")
    shop.start(v2, "fresh", 3, crash="labelled")

    steps = v2.app.retrieve("fresh").steps()
    assert [s.name for s in steps] == ["reserve", MARKER, "new_label"]
    marker = steps[1]
    assert (marker.step_id, marker.status, marker.error) == (1, Status.SUCCESS, None)
    assert marker.child_workflow_id is None

    restarted = shop.deploy("v2")
    handles = recovered(restarted)

    assert handles["fresh"].get() == "sent new-3"
    assert shop.ran("fresh") == ["reserve", "new_label", "notify"]  # nothing ran twice
    assert step_names(restarted, "fresh") == ["reserve", MARKER, "new_label", "notify"]
    # Run to the end without a crash, it records the same history.
    assert v2.apply(args=(4,), workflow_id="straight").get() == "sent new-4"
    assert step_names(v2, "straight") == ["reserve", MARKER, "new_label", "notify"]


def test_v3_deprecate_patch_replays_histories_with_and_without_the_marker(
    shop: Shop,
) -> None:
    v2 = shop.deploy("v2")
    shop.start(v2, "v2-marked", 1, crash="labelled")
    shop.start(v2, "v2-early", 2, crash="reserved")
    v3 = shop.deploy("v3")
    shop.start(v3, "v3-started", 3, crash="labelled")
    assert step_names(v3, "v3-started") == ["reserve", "new_label"]  # no marker

    restarted = shop.deploy("v3")
    handles = recovered(restarted)

    assert set(handles) == {"v2-marked", "v2-early", "v3-started"}
    assert handles["v2-marked"].get() == "sent new-1"
    assert shop.ran("v2-marked") == ["reserve", "new_label", "notify"]
    assert step_names(restarted, "v2-marked") == ["reserve", MARKER, "new_label", "notify"]
    assert handles["v2-early"].get() == "sent new-2"
    assert step_names(restarted, "v2-early") == ["reserve", "new_label", "notify"]
    assert handles["v3-started"].get() == "sent new-3"
    assert shop.ran("v3-started") == ["reserve", "new_label", "notify"]
    assert step_names(restarted, "v3-started") == ["reserve", "new_label", "notify"]


def test_v3_cannot_replay_a_workflow_still_on_the_old_branch(shop: Shop) -> None:
    """Why v3 waits until no workflow that took the old branch is in flight."""
    v1 = shop.deploy("v1")
    shop.start(v1, "old", 1, crash="labelled")

    handles = recovered(shop.deploy("v3"))

    handle = handles["old"]
    assert handle.status is Status.ERROR
    with pytest.raises(NonDeterministicWorkflowError, match=r"'new_label'.*'old_label'"):
        handle.get()
    assert "new_label" not in shop.ran("old")


def test_v4_without_the_call_replays_v3_histories_but_not_v2_markers(shop: Shop) -> None:
    v2 = shop.deploy("v2")
    shop.start(v2, "v2-marked", 1, crash="labelled")
    v3 = shop.deploy("v3")
    shop.start(v3, "v3-started", 2, crash="labelled")

    handles = recovered(shop.deploy("v4"))

    assert handles["v3-started"].get() == "sent new-2"
    assert shop.ran("v3-started") == ["reserve", "new_label", "notify"]
    marked = handles["v2-marked"]
    assert marked.status is Status.ERROR
    with pytest.raises(NonDeterministicWorkflowError, match=rf"'new_label'.*'{re.escape(MARKER)}'"):
        marked.get()
    assert shop.ran("v2-marked") == ["reserve", "new_label"]  # only its v2 run


def test_a_marker_of_another_patch_is_not_this_patch(shop: Shop) -> None:
    """Stacked patches: each ``patch()`` that finds another patch's marker returns False and
    leaves the position to the next check, so the newest patch can sit on top of older
    ones."""
    v1 = shop.deploy("v1")
    shop.start(v1, "v1-old", 1, crash="labelled")
    v2 = shop.deploy("v2")
    shop.start(v2, "v2-marked", 2, crash="labelled")
    stacked = shop.deploy("stacked")
    shop.start(stacked, "stacked-new", 3, crash="labelled")
    assert step_names(stacked, "stacked-new") == ["reserve", EXPRESS_MARKER, "express_label"]

    restarted = shop.deploy("stacked")
    handles = recovered(restarted)

    assert handles["v1-old"].get() == "sent old-1"
    assert handles["v2-marked"].get() == "sent new-2"
    assert step_names(restarted, "v2-marked") == ["reserve", MARKER, "new_label", "notify"]
    assert handles["stacked-new"].get() == "sent express-3"
    assert shop.ran("stacked-new") == ["reserve", "express_label", "notify"]


def test_a_position_passed_by_the_old_code_is_old_even_if_empty(shop: Shop) -> None:
    """A step recorded after the patch's position means the workflow got past it on the old
    code (there, a concurrent step that had not finished): it replays the old branch."""
    v1 = shop.deploy("v1")
    shop.start(v1, "gap", 7, crash="reserved")
    v1.app.broker.record_step(
        "gap", StepRow(step_id=2, name="notify", output='"sent old-7"', started_at=1, finished_at=1)
    )

    handles = recovered(shop.deploy("v2"))

    assert handles["gap"].get() == "sent old-7"
    assert shop.ran("gap") == ["reserve", "old_label"]
    assert step_names(v1, "gap") == ["reserve", "old_label", "notify"]


def test_patch_gives_the_position_back_when_another_execution_recorded_a_step_there(
    app: Taskflow,
) -> None:
    runs: list[str] = []

    @app.step(name="first")
    def first() -> None:
        # Meanwhile an execution of the same workflow on the old code recorded its own step 1.
        old = StepRow(step_id=1, name="old_label", output='"old-9"', started_at=1, finished_at=1)
        app.broker.record_step(taskflow.current().workflow_id, old)

    @app.step(name="old_label")
    def old_label() -> str:
        runs.append("old_label")
        return "old-again"

    @app.step(name="new_label")
    def new_label() -> str:
        runs.append("new_label")
        return "new"

    @app.workflow(name="wf.raced")
    def raced() -> str:
        first()
        if taskflow.patch(PATCH):
            return new_label()
        return old_label()

    handle = raced.apply(workflow_id="raced")

    assert handle.get() == "old-9"
    assert runs == []
    assert [s.name for s in handle.steps()] == ["first", "old_label"]


@pytest.mark.parametrize("function", [taskflow.patch, taskflow.deprecate_patch])
def test_outside_a_workflow_it_raises_naming_the_function(
    function: Callable[[str], bool],
) -> None:
    with pytest.raises(
        TaskflowError, match=rf"taskflow\.{function.__name__}\(\) was called outside"
    ):
        function(PATCH)


@pytest.mark.parametrize("function", [taskflow.patch, taskflow.deprecate_patch])
def test_inside_a_step_it_raises_naming_the_function(
    app: Taskflow, function: Callable[[str], bool]
) -> None:
    @app.step(name="sneaky")
    def sneaky() -> bool:
        return function(PATCH)

    @app.workflow(name="wf.sneaky")
    def wf() -> bool:
        return sneaky()

    handle = wf.apply(workflow_id="sneaky")

    expected = rf"taskflow\.{function.__name__}\(\) is not allowed inside a step"
    with pytest.raises(TaskflowError, match=expected):
        handle.get()
    assert [s.name for s in handle.steps()] == ["sneaky"]  # no marker


def test_a_patch_needs_a_non_empty_name(app: Taskflow) -> None:
    names: list[Any] = ["", None]

    @app.workflow(name="wf.unnamed")
    def wf(index: int) -> bool:
        return taskflow.patch(names[index])

    for index in range(len(names)):
        handle = wf.apply(args=(index,), workflow_id=f"unnamed-{index}")
        with pytest.raises(TaskflowError, match=r"taskflow\.patch\(\) needs a non-empty str"):
            handle.get()
        assert handle.steps() == []
