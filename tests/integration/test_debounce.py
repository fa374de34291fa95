"""Debouncing through the app, on both dialects: ``app.debouncer(wf).debounce(...)`` in
producers (with an injected clock), inside workflows (a step of the caller, replayed without
writing), its refusals, and a real ``taskflow worker`` running the debounced workflow once,
with the last arguments, after the delay or the timeout."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import taskflow
from taskflow import (
    ConfigurationError,
    Debouncer,
    SerializationError,
    Status,
    Taskflow,
    TaskflowError,
    UnknownQueueError,
    UnknownWorkflowError,
)
from taskflow.clock import now_ms
from taskflow.execution import WorkerMode

from . import workerapp
from .helpers import PROCESS_LIMIT, FakeClock, Workers, step_counts, wait_for, workflow_ids


class Flaky(Exception):
    """Raised by a workflow on its first run."""


def digest_app(make_app: Callable[..., Taskflow]) -> tuple[Taskflow, FakeClock, Any]:
    """An app on a fake clock with a ``digest.send(user, items)`` workflow."""
    clock = FakeClock()
    app = make_app(clock=clock)

    @app.workflow(name="digest.send")
    def send(user: str, items: list[int]) -> str:
        return f"{user}:{sum(items)}"

    return app, clock, send


def run_due(app: Taskflow) -> list[str]:
    """Promote what is due on the app's clock, then claim and run it here, as a worker would."""
    now = now_ms(app.clock)
    app.broker.tick(now)
    rows = app.broker.claim(app.executor_id, ["default"], app.app_version, 100, now)
    mode = WorkerMode(executor_id=app.executor_id, defer_finish=False)
    for row in rows:
        app.run_claimed(row, mode)
    return [r.id for r in rows]


# -- producers ------------------------------------------------------------------------------


def test_calls_within_the_delay_run_the_workflow_once_with_the_last_arguments(
    make_app: Callable[..., Taskflow],
) -> None:
    app, clock, send = digest_app(make_app)
    debouncer = app.debouncer(send)
    assert isinstance(debouncer, Debouncer)
    first = debouncer.debounce("ann", 10, "ann", [1])
    start = now_ms(clock)
    assert first.status is Status.DELAYED
    clock.advance(8)
    second = debouncer.debounce("ann", 10, "ann", [1, 2])
    clock.advance(8)  # 16 s after the first call: pushed back, so not due yet
    assert run_due(app) == []
    third = debouncer.debounce("ann", 10, user="ann", items=[1, 2, 3])
    assert first.id == second.id == third.id
    row = app.broker.get_workflow(first.id)
    assert row is not None and row.delay_until == start + 26_000
    clock.advance(9.999)
    assert run_due(app) == []
    clock.advance(0.001)
    assert run_due(app) == [first.id]
    assert third.get(timeout=5) == "ann:6"
    assert workflow_ids(app.conf.database_url or "") == [first.id]
    # It ran: the next call is a new cycle.
    after = debouncer.debounce("ann", 10, "ann", [7])
    assert after.id != first.id and after.status is Status.DELAYED


def test_timeout_caps_the_total_wait(make_app: Callable[..., Taskflow]) -> None:
    app, clock, send = digest_app(make_app)
    debouncer = app.debouncer(send, timeout=timedelta(seconds=30))
    handles = []
    for n in range(1, 8):
        handles.append(debouncer.debounce("bob", 10, "bob", [n]))
        clock.advance(5)
    # 35 s after the first call: 30 s of cap even though the last call was 5 s ago.
    assert {h.id for h in handles} == {handles[0].id}
    assert run_due(app) == [handles[0].id]
    assert handles[-1].get(timeout=5) == "bob:7"


def test_keys_are_independent(make_app: Callable[..., Taskflow]) -> None:
    app, clock, _send = digest_app(make_app)
    debouncer = app.debouncer("digest.send")  # by name
    a = debouncer.debounce("ann", 1, "ann", [1])
    b = debouncer.debounce("bob", 1, "bob", [2])
    assert a.id != b.id
    clock.advance(1)
    assert sorted(run_due(app)) == sorted([a.id, b.id])
    assert (a.get(timeout=5), b.get(timeout=5)) == ("ann:1", "bob:2")


def test_queue_priority_and_timeout_of_the_workflow_are_used(
    make_app: Callable[..., Taskflow],
) -> None:
    app = make_app(clock=FakeClock())
    app.queue("digests")

    @app.workflow(name="digest.weekly", queue="digests", priority=3, timeout=60)
    def weekly(n: int) -> int:
        return n

    info = app.debouncer(weekly).debounce("k", 5, 1).info()
    assert (info.queue, info.status) == ("digests", Status.DELAYED)
    row = app.broker.get_workflow(info.id)
    assert row is not None and (row.priority, row.timeout_ms) == (3, 60_000)
    app.queue("other")
    other = app.debouncer(weekly, queue="other").debounce("k", 5, 2)
    # Another queue is another debouncer's business, but the key belongs to the workflow.
    assert other.id == info.id
    assert app.debouncer(weekly).queue == "digests"


def test_a_zero_delay_enqueues_at_once(make_app: Callable[..., Taskflow]) -> None:
    app, _clock, send = digest_app(make_app)
    h = app.debouncer(send).debounce("ann", 0, "ann", [4])
    assert h.status is Status.ENQUEUED
    assert run_due(app) == [h.id]
    assert h.get(timeout=5) == "ann:4"


# -- refusals -------------------------------------------------------------------------------


BAD_KEYS: list[Any] = ["", None, 7, b"k"]
BAD_DELAYS: list[Any] = [-1, -0.5, "5", True, None, math.nan, math.inf, timedelta(seconds=-1)]
BAD_TIMEOUTS: list[Any] = [0, -1, "30", False, math.nan, timedelta(0)]


def test_bad_keys_delays_and_timeouts_are_refused_naming_the_value(app: Taskflow) -> None:
    @app.workflow(name="noop")
    def noop() -> None: ...

    debouncer = app.debouncer(noop)
    for key in BAD_KEYS:
        expected = r"debounce key must be a non-empty string, got " + re.escape(repr(key))
        with pytest.raises(ConfigurationError, match=expected):
            debouncer.debounce(key, 1)
    for delay in BAD_DELAYS:
        expected = r"delay must be a number of seconds >= 0 .*got " + re.escape(repr(delay))
        with pytest.raises(ConfigurationError, match=expected):
            debouncer.debounce("k", delay)
    for timeout in BAD_TIMEOUTS:
        expected = r"timeout must be a number of seconds > 0 .*got " + re.escape(repr(timeout))
        with pytest.raises(ConfigurationError, match=expected):
            app.debouncer(noop, timeout=timeout)
    assert workflow_ids(app.conf.database_url or "") == []
    # The boundaries are accepted.
    assert debouncer.debounce("k", 0).status is Status.ENQUEUED
    assert app.debouncer(noop, timeout=0.001).debounce("k2", timedelta(0)).id


def test_an_argument_that_cannot_be_stored_writes_nothing(
    make_app: Callable[..., Taskflow],
) -> None:
    app, _clock, send = digest_app(make_app)
    debouncer = app.debouncer(send)
    with pytest.raises(SerializationError, match=r"argument 'items' of workflow 'digest\.send'"):
        debouncer.debounce("ann", 5, "ann", [object()])
    assert workflow_ids(app.conf.database_url or "") == []
    # The key was not taken either: a good call starts the first cycle.
    assert debouncer.debounce("ann", 5, "ann", [1]).status is Status.DELAYED


def test_unknown_workflows_and_queues_are_refused(
    app: Taskflow, make_app: Callable[..., Taskflow]
) -> None:
    @app.workflow(name="noop")
    def noop() -> None: ...

    with pytest.raises(UnknownWorkflowError, match="'nope'"):
        app.debouncer("nope")
    other = make_app("other")

    @other.workflow(name="noop")
    def other_noop() -> None: ...

    with pytest.raises(ConfigurationError, match="another app"):
        app.debouncer(other_noop)
    with pytest.raises(UnknownQueueError, match="'missing'"):
        app.debouncer(noop, queue="missing").debounce("k", 1)
    app.queue("shards", partitioned=True)
    with pytest.raises(ConfigurationError, match="'shards' is partitioned"):
        app.debouncer(noop, queue="shards").debounce("k", 1)
    assert workflow_ids(app.conf.database_url or "") == []


# -- inside workflows -----------------------------------------------------------------------


def test_inside_a_workflow_it_is_a_step_replayed_without_writing(
    make_app: Callable[..., Taskflow],
) -> None:
    app, clock, send = digest_app(make_app)
    debouncer = app.debouncer(send)
    runs: list[int] = []

    @app.workflow(name="digest.collect", autoretry_for=(Flaky,), max_retries=1, retry_jitter=False)
    def collect(user: str) -> str:
        h = debouncer.debounce(user, 30, user, [len(runs)])
        runs.append(1)
        if len(runs) == 1:
            raise Flaky("first run")  # the retry replays the debounce step
        return h.id

    parent = collect.apply(("ann",), workflow_id="collect-1")
    child_id = parent.get(timeout=5)
    assert runs == [1, 1]
    # The first cycle's workflow id derives from the caller's, so a crashed caller that runs
    # again finds it instead of starting another.
    assert child_id == "collect-1-0"
    (step,) = parent.steps()
    assert (step.name, step.child_workflow_id) == ("digest.send.debounce", child_id)
    row = app.broker.get_workflow(child_id)
    assert row is not None
    # Written once, by the first run: the retry (which slept on the clock) changed nothing.
    assert (row.inputs, row.parent_id) == ('{"args":["ann",[0]],"kwargs":{}}', None)
    assert row.delay_until == row.created_at + 30_000
    assert clock.sleeps  # the retry did wait


def test_inside_a_step_it_is_refused(make_app: Callable[..., Taskflow]) -> None:
    app, _clock, send = digest_app(make_app)
    debouncer = app.debouncer(send)

    @app.step
    def schedule() -> str:
        return debouncer.debounce("ann", 5, "ann", [1]).id

    @app.workflow(name="digest.bad")
    def bad() -> str:
        return schedule()

    with pytest.raises(TaskflowError, match=r"debouncing workflow 'digest\.send' is not allowed"):
        bad()
    assert [i for i in workflow_ids(app.conf.database_url or "") if i.startswith("digest")] == []
    rows = [app.broker.get_workflow(i) for i in workflow_ids(app.conf.database_url or "")]
    assert [r.name for r in rows if r is not None] == ["digest.bad"]


def test_eager_mode_runs_each_call_inline(make_app: Callable[..., Taskflow]) -> None:
    app, _clock, send = digest_app(make_app)
    app.conf.task_always_eager = True
    h = app.debouncer(send).debounce("ann", 60, "ann", [2, 3])
    assert (h.status, h.get()) == (Status.SUCCESS, "ann:5")


def test_debouncer_is_public() -> None:
    assert taskflow.Debouncer is Debouncer


# -- a real worker --------------------------------------------------------------------------


def test_a_worker_runs_the_debounced_workflow_once_after_the_delay_or_timeout(
    database_url: str,
    workers: Workers,
    make_producer: Callable[..., workerapp.WorkerApp],
) -> None:
    producer = make_producer(database_url)
    workers.start(database_url)
    quiet = producer.app.debouncer(producer.one_step)
    # Long delays first: nothing can start before the last call, which asks for 0.2 s.
    a = quiet.debounce("burst", 60, "a")
    b = quiet.debounce("burst", 60, "b")
    c = quiet.debounce("burst", 0.2, "c")
    assert a.id == b.id == c.id
    # The cap is 1 s: the second call comes well within it, and the workflow starts then.
    capped = producer.app.debouncer(producer.one_step, timeout=1.0)
    x = capped.debounce("capped", 60, "x")
    y = capped.debounce("capped", 60, "y")
    assert x.id == y.id != a.id
    assert c.get(timeout=PROCESS_LIMIT) == "c"
    assert y.get(timeout=PROCESS_LIMIT) == "y"
    wait_for(lambda: len(step_counts(workers.workdir)) == 2, "both side effects")
    assert step_counts(workers.workdir) == {(a.id, "touch"): 1, (x.id, "touch"): 1}
    assert sorted(workflow_ids(database_url)) == sorted([a.id, x.id])
