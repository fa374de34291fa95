"""sleep, send/recv, set_event/get_event and get() inside workflows, run directly in this
process on both dialects: semantics, replay after a crash, and the errors for misuse."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import taskflow
from taskflow import Taskflow, TaskflowError, UnknownWorkflowError
from taskflow.errors import ConfigurationError

from .helpers import FakeClock, SimulatedCrash


def _run(app: Taskflow, wf: Any, *args: Any, workflow_id: str) -> threading.Thread:
    thread = threading.Thread(target=lambda: wf.apply(args=args, workflow_id=workflow_id))
    thread.start()
    return thread


def test_messages_arrive_in_send_order_per_topic_and_recv_times_out(app: Taskflow) -> None:
    @app.workflow(name="m.receiver")
    def receiver() -> list[Any]:
        taskflow.set_event("ready", True)
        plain = [taskflow.recv(timeout=10) for _ in range(3)]
        topical = [taskflow.recv("t", timeout=10) for _ in range(2)]
        late = taskflow.recv(timeout=0.05)
        return [plain, topical, late]

    thread = _run(app, receiver, workflow_id="r")
    assert app.get_event("r", "ready", timeout=10) is True
    for i in range(3):
        app.send("r", {"n": i})
    app.send("r", "x", topic="t")
    app.send("r", "y", topic="t")
    thread.join(20)
    assert app.retrieve("r").get() == [[{"n": 0}, {"n": 1}, {"n": 2}], ["x", "y"], None]


def test_a_message_sent_before_the_receiver_waits_is_kept(app: Taskflow) -> None:
    go = threading.Event()

    @app.step()
    def hold() -> None:
        go.wait(10)

    @app.workflow(name="m.gate")
    def gate() -> Any:
        taskflow.set_event("ready", True)
        hold()
        return taskflow.recv("go", timeout=0)

    thread = _run(app, gate, workflow_id="g")
    assert app.get_event("g", "ready", timeout=10) is True
    app.send("g", "kept", topic="go")
    go.set()
    thread.join(20)
    assert app.retrieve("g").get() == "kept"


def test_a_workflow_sends_to_another_exactly_once_across_a_replay(app: Taskflow) -> None:
    crash = {"armed": True}

    @app.workflow(name="m.sink")
    def sink(count: int) -> list[Any]:
        taskflow.set_event("ready", True)
        return [taskflow.recv(timeout=10) for _ in range(count)]

    @app.workflow(name="m.source")
    def source(dest: str) -> None:
        taskflow.send(dest, 1)
        if crash["armed"]:
            crash["armed"] = False
            raise SimulatedCrash
        taskflow.send(dest, 2)

    sink_thread = _run(app, sink, 2, workflow_id="sink")
    assert app.get_event("sink", "ready", timeout=10) is True
    with pytest.raises(SimulatedCrash):
        source("sink")
    [handle] = [h for h in app.recover() if h.id != "sink"]
    assert handle.get() is None
    sink_thread.join(20)
    assert app.retrieve("sink").get() == [1, 2]


def test_a_received_message_is_replayed_not_received_again(app: Taskflow) -> None:
    crash = {"armed": True}

    @app.workflow(name="m.once")
    def once() -> list[Any]:
        taskflow.set_event("ready", True)
        first = taskflow.recv(timeout=10)
        if crash["armed"]:
            crash["armed"] = False
            raise SimulatedCrash
        return [first, taskflow.recv(timeout=10)]

    def run() -> None:
        with pytest.raises(SimulatedCrash):
            once.apply(workflow_id="o")

    thread = threading.Thread(target=run)
    thread.start()
    assert app.get_event("o", "ready", timeout=10) is True
    app.send("o", "a")
    thread.join(20)
    app.send("o", "b")
    [handle] = app.recover()
    assert handle.get() == ["a", "b"]
    names = [s.name for s in handle.steps()]
    assert names.count("taskflow.recv") == 2


def test_send_to_an_unknown_workflow_raises(app: Taskflow) -> None:
    with pytest.raises(UnknownWorkflowError, match="'nobody'"):
        app.send("nobody", 1)

    @app.workflow(name="m.lost")
    def lost() -> None:
        taskflow.send("nobody", 1)

    with pytest.raises(UnknownWorkflowError, match="'nobody'"):
        lost()


def test_an_idempotency_key_sends_once(app: Taskflow) -> None:
    @app.workflow(name="m.two")
    def two() -> list[Any]:
        taskflow.set_event("ready", True)
        return [taskflow.recv(timeout=10), taskflow.recv(timeout=0.1)]

    thread = _run(app, two, workflow_id="two")
    assert app.get_event("two", "ready", timeout=10)
    app.send("two", "hello", idempotency_key="k1")
    app.send("two", "hello", idempotency_key="k1")
    thread.join(20)
    assert app.retrieve("two").get() == ["hello", None]


def test_events_hold_the_latest_value_and_readers_wait_for_the_first(app: Taskflow) -> None:
    go = threading.Event()

    @app.step()
    def wait_go() -> None:
        go.wait(10)

    @app.workflow(name="m.stages")
    def stages() -> str:
        taskflow.set_event("stage", "one")
        wait_go()
        taskflow.set_event("stage", "two")
        taskflow.set_event("payload", {"a": [1, 2]})
        return "done"

    @app.workflow(name="m.reader")
    def reader(target: str) -> Any:
        return taskflow.get_event(target, "payload", timeout=10)

    reader_thread = _run(app, reader, "st", workflow_id="rd")
    thread = _run(app, stages, workflow_id="st")
    assert app.get_event("st", "stage", timeout=10) == "one"
    go.set()
    thread.join(20)
    reader_thread.join(20)
    assert app.get_event("st", "stage") == "two"
    assert app.retrieve("rd").get() == {"a": [1, 2]}
    # Never set, and the workflow finished: None at once, not after the timeout.
    assert app.get_event("st", "never", timeout=None) is None
    assert app.get_event("nobody", "stage", timeout=0) is None


def test_sleep_wakes_at_the_recorded_time_on_replay(make_app: Callable[..., Taskflow]) -> None:
    clock = FakeClock()
    app = make_app("sleepy")
    app.clock = clock
    crash = {"armed": True}

    @app.workflow(name="m.sleepy")
    def sleepy() -> float:
        taskflow.sleep(3600)
        if crash["armed"]:
            crash["armed"] = False
            raise SimulatedCrash
        return clock.now()

    start = clock.now()
    with pytest.raises(SimulatedCrash):
        sleepy.apply(workflow_id="s")
    assert clock.now() == pytest.approx(start + 3600)
    clock.advance(100)  # down for 100 s after the wake-up time
    [handle] = app.recover()
    # The recorded wake-up time has passed: no second hour of sleep.
    assert handle.get() == pytest.approx(start + 3700)
    assert clock.sleeps.count(3600) == 1
    assert [s.name for s in handle.steps()] == ["taskflow.sleep"]


def test_get_inside_a_workflow_is_a_recorded_step(app: Taskflow) -> None:
    crash = {"armed": True}

    @app.workflow(name="m.kid")
    def kid(x: int) -> int:
        return x + 1

    @app.workflow(name="m.parent")
    def parent() -> list[Any]:
        done = kid.apply(args=(1,), workflow_id="kid-1").get()
        never = kid.delay(5)  # no worker runs it
        try:
            never.get(timeout=0.05)
            waited = "finished"
        except TimeoutError:
            waited = "timeout"
        if crash["armed"]:
            crash["armed"] = False
            raise SimulatedCrash
        return [done, waited]

    with pytest.raises(SimulatedCrash):
        parent.apply(workflow_id="p")
    [handle] = [h for h in app.recover() if h.id == "p"]
    # The replay returns the recorded outcomes (the timeout too), without waiting again.
    assert handle.get() == [2, "timeout"]
    names = [s.name for s in handle.steps()]
    assert names.count("taskflow.get_result") == 2
    assert "taskflow.get_result.deadline" in names


@pytest.mark.parametrize(
    "call",
    [
        lambda: taskflow.sleep(1),
        lambda: taskflow.recv("t"),
        lambda: taskflow.send("x", 1),
        lambda: taskflow.set_event("k", 1),
        lambda: taskflow.get_event("x", "k"),
    ],
    ids=["sleep", "recv", "send", "set_event", "get_event"],
)
def test_primitives_refuse_to_run_outside_a_workflow_and_inside_a_step(
    app: Taskflow, call: Any
) -> None:
    with pytest.raises(TaskflowError, match="outside a workflow"):
        call()

    @app.step()
    def inner() -> None:
        call()

    @app.workflow(name="m.misuse")
    def misuse() -> None:
        inner()

    with pytest.raises(TaskflowError, match="inside a step"):
        misuse()


def test_bad_arguments_name_the_value(app: Taskflow) -> None:
    @app.workflow(name="m.bad")
    def bad(what: str) -> None:
        if what == "sleep":
            taskflow.sleep(-1)
        elif what == "topic":
            taskflow.recv("", timeout=1)
        else:
            taskflow.set_event("", 1)

    for what, text in (("sleep", "-1"), ("topic", "''"), ("key", "''")):
        with pytest.raises(ConfigurationError, match=text):
            bad(what)
