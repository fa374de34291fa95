"""Concurrent steps (``taskflow.start_step``, ``gather``, ``select``) on both dialects.

In-process tests coordinate the step bodies with :class:`threading.Event` (they run in
threads of this process) and simulate crashes with :class:`SimulatedCrash`; the last test
kills a real ``taskflow worker`` with SIGKILL between ``start_step`` and ``gather`` and checks
the outcome from outside (raw SQL and files the steps append to).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

import taskflow
from taskflow import (
    ConfigurationError,
    NonDeterministicWorkflowError,
    Status,
    StepFuture,
    Taskflow,
    TaskflowError,
)

from . import concurrentapp
from .helpers import (
    PROCESS_LIMIT,
    FakeClock,
    SimulatedCrash,
    Workers,
    pid_alive,
    status_counts,
    wait_for,
)

WAIT = 10.0
"""Seconds a step body waits for an event before failing on its own (the tests set it long
before; this only keeps a broken test from hanging)."""


def _wait(event: threading.Event, what: str) -> None:
    if not event.wait(WAIT):
        raise AssertionError(f"timed out waiting for {what}")


def _outputs(app: Taskflow, workflow_id: str) -> dict[int, tuple[str, str | None]]:
    """Recorded ``(name, output)`` by step id."""
    return {s.step_id: (s.name, s.output) for s in app.broker.load_steps(workflow_id)}


# -- order, values, errors --------------------------------------------------------------------
def test_step_ids_follow_call_order_whatever_order_the_bodies_finish_in(app: Taskflow) -> None:
    """Three steps finishing in reverse order: ids are 0, 1, 2 in call order, the next step
    gets 3, ``gather`` returns values in list order, and each body sees its own step id."""
    c_done, b_done = threading.Event(), threading.Event()
    seen: dict[str, int | None] = {}
    runs: list[str] = []

    @app.step(name="letter")
    def letter(name: str) -> str:
        if name == "a":
            _wait(b_done, "b to finish")
        if name == "b":
            _wait(c_done, "c to finish")
        seen[name] = taskflow.current().step_id
        runs.append(name)
        return name.upper()

    @app.step(name="after")
    def after() -> str:
        return "after"

    @app.workflow(name="wf.order")
    def wf() -> dict[str, Any]:
        a = taskflow.start_step(letter, "a")
        b = taskflow.start_step(letter, "b")
        c = taskflow.start_step(letter, "c")
        c.result()
        c_done.set()
        b.result()
        b_done.set()
        values = taskflow.gather([a, b, c])
        return {"ids": [a.step_id, b.step_id, c.step_id], "values": values, "next": after()}

    handle = wf.apply()

    assert handle.get() == {"ids": [0, 1, 2], "values": ["A", "B", "C"], "next": "after"}
    assert runs == ["c", "b", "a"]
    assert seen == {"a": 0, "b": 1, "c": 2}
    assert [(s.step_id, s.name, s.status) for s in handle.steps()] == [
        (0, "letter", Status.SUCCESS),
        (1, "letter", Status.SUCCESS),
        (2, "letter", Status.SUCCESS),
        (3, "after", Status.SUCCESS),
    ]


def test_started_steps_run_at_the_same_time(app: Taskflow) -> None:
    """Each body waits at a barrier for the other two: run one after another they would
    fail."""
    barrier = threading.Barrier(3, timeout=WAIT)

    @app.step(name="meet")
    def meet(n: int) -> int:
        barrier.wait()
        return n * 10

    @app.workflow(name="wf.meet")
    def wf() -> list[int]:
        return taskflow.gather([taskflow.start_step(meet, n) for n in range(3)])

    assert wf.apply().get() == [0, 10, 20]


def test_gather_raises_the_first_failure_in_list_order_once_all_have_finished(
    app: Taskflow,
) -> None:
    """The KeyError (third in the list) happens first, the ValueError second: ``gather``
    raises the ValueError, and only after the slow first step has been recorded."""
    key_failed, value_failed = threading.Event(), threading.Event()
    finished: list[str] = []

    @app.step(name="slow_ok")
    def slow_ok() -> str:
        _wait(value_failed, "the ValueError")
        finished.append("slow_ok")
        return "ok"

    @app.step(name="bad_value")
    def bad_value() -> None:
        _wait(key_failed, "the KeyError")
        try:
            raise ValueError("second to fail, first in the list")
        finally:
            value_failed.set()

    @app.step(name="bad_key")
    def bad_key() -> None:
        try:
            raise KeyError("first to fail")
        finally:
            key_failed.set()

    @app.workflow(name="wf.failing")
    def wf() -> None:
        futures: list[StepFuture[Any]] = [
            taskflow.start_step(slow_ok),
            taskflow.start_step(bad_value),
            taskflow.start_step(bad_key),
        ]
        try:
            taskflow.gather(futures)
        finally:
            # Everything finished before gather raised.
            finished.append(f"gather done={[f.done() for f in futures]}")

    handle = wf.apply()

    with pytest.raises(ValueError, match="second to fail, first in the list"):
        handle.get()
    assert finished == ["slow_ok", "gather done=[True, True, True]"]
    steps = handle.steps()
    assert [(s.name, s.status) for s in steps] == [
        ("slow_ok", Status.SUCCESS),
        ("bad_value", Status.ERROR),
        ("bad_key", Status.ERROR),
    ]
    assert steps[2].error is not None
    assert steps[2].error.type_name == "builtins.KeyError"


def test_a_workflow_retry_runs_again_only_the_concurrent_step_that_failed(
    make_app: Callable[..., Taskflow],
) -> None:
    """``gather`` raised a step's error and the workflow retries: that step runs again, the
    one that succeeded is replayed; step retries in the thread use the step's own policy."""
    clock = FakeClock()
    app = make_app(clock=clock)
    runs: list[str] = []

    @app.step(name="steady", max_retries=2, retry_backoff=1.0, retry_jitter=False)
    def steady() -> str:
        runs.append("steady")
        if runs.count("steady") <= 2:
            raise ConnectionError("flaky network")  # retried by the step's own policy
        return "steady"

    @app.step(name="once_broken")
    def once_broken() -> str:
        runs.append("once_broken")
        if runs.count("once_broken") == 1:
            raise LookupError("broken the first time")
        return "fixed"

    @app.workflow(
        name="wf.retried",
        autoretry_for=(LookupError,),
        max_retries=1,
        default_retry_delay=30.0,
    )
    def wf() -> list[str]:
        return taskflow.gather([taskflow.start_step(steady), taskflow.start_step(once_broken)])

    handle = wf.apply()

    assert handle.get() == ["steady", "fixed"]
    assert runs.count("steady") == 3  # two step-level retries, never re-run by the retry
    assert runs.count("once_broken") == 2
    assert clock.sleeps.count(30.0) == 1  # the workflow-level retry
    assert [s for s in clock.sleeps if s != 30.0] == [1.0, 2.0]
    assert [(s.name, s.status) for s in handle.steps()] == [
        ("steady", Status.SUCCESS),
        ("once_broken", Status.SUCCESS),
    ]


def test_a_future_gives_its_value_or_its_error_and_can_time_out(app: Taskflow) -> None:
    release = threading.Event()
    outcomes: list[Any] = []

    @app.step(name="held")
    def held() -> int:
        _wait(release, "the release")
        return 42

    @app.step(name="broken")
    def broken() -> int:
        raise ZeroDivisionError("no")

    @app.workflow(name="wf.future")
    def wf() -> str:
        slow = taskflow.start_step(held)
        failing = taskflow.start_step(broken)
        with pytest.raises(TimeoutError, match=r"step 0 \('held'\)"):
            slow.result(timeout=0.01)
        outcomes.append(slow.done())
        release.set()
        outcomes.append(slow.result())
        outcomes.append((slow.done(), slow.step_id, failing.step_id, slow.name))
        try:
            failing.result()
        except ZeroDivisionError as exc:
            outcomes.append(str(exc))
        return "ok"

    assert wf.apply().get() == "ok"
    assert outcomes == [False, 42, (True, 0, 1, "held"), "no"]


# -- select -----------------------------------------------------------------------------------
def test_select_is_recorded_and_a_replay_takes_the_same_branch(app: Taskflow) -> None:
    """``b`` wins while ``a`` waits; both are recorded before the crash. On replay both are
    finished from their records (``a`` first, in call order): only the recorded choice
    makes ``select`` return ``b`` again."""
    release_a = threading.Event()
    runs: list[str] = []
    branches: list[str] = []
    crash = [True]

    @app.step(name="pick")
    def pick(name: str) -> str:
        if name == "a":
            _wait(release_a, "a's release")
        runs.append(name)
        return name

    @app.workflow(name="wf.select")
    def wf() -> str:
        a = taskflow.start_step(pick, "a")
        b = taskflow.start_step(pick, "b")
        winner = taskflow.select([a, b])
        branches.append(winner.result())
        release_a.set()
        taskflow.gather([a, b])
        if crash:
            crash.clear()
            raise SimulatedCrash
        return f"took {winner.result()}"

    with pytest.raises(SimulatedCrash):
        wf.apply(workflow_id="select-1")
    assert app.retrieve("select-1").status is Status.PENDING
    assert _outputs(app, "select-1") == {
        0: ("pick", '"a"'),
        1: ("pick", '"b"'),
        2: ("taskflow.select", "1"),
    }

    [handle] = app.recover()

    assert handle.get() == "took b"
    assert branches == ["b", "b"]
    assert sorted(runs) == ["a", "b"]  # nothing ran twice
    assert handle.info().attempts == 2


def test_select_picks_the_first_to_finish_even_when_called_late(app: Taskflow) -> None:
    """All three finished before ``select`` is called: it still returns the one that
    finished first, and records its index."""

    @app.step(name="ordered")
    def ordered(n: int) -> int:
        if n < 2:
            # Finished means recorded: wait for the next one's checkpoint.
            wait_for(lambda: n + 1 in _outputs(app, "late"), f"step {n + 1} to finish", WAIT)
        return n

    @app.workflow(name="wf.late_select")
    def wf() -> int:
        futures = [taskflow.start_step(ordered, n) for n in range(3)]
        taskflow.gather(futures)
        return int(taskflow.select(futures).result())

    handle = wf.apply(workflow_id="late")
    assert handle.get() == 2
    assert _outputs(app, "late")[3] == ("taskflow.select", "2")


def test_a_replay_whose_select_has_fewer_futures_than_recorded_is_non_deterministic(
    make_app: Callable[..., Taskflow],
) -> None:
    """The recorded winner is index 1; the new code selects from one future only."""
    release_first = threading.Event()
    old = make_app("old")

    @old.step(name="pick")
    def pick(n: int) -> int:
        if n == 0:
            _wait(release_first, "the release")
        return n

    @old.workflow(name="wf.shrinking")
    def v1() -> None:
        futures = [taskflow.start_step(pick, n) for n in range(2)]
        taskflow.select(futures)
        release_first.set()
        taskflow.gather(futures)
        raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        v1.apply(workflow_id="shrinking")
    assert _outputs(old, "shrinking")[2] == ("taskflow.select", "1")

    new = make_app("new")

    @new.step(name="pick")
    def pick2(n: int) -> int:
        return n

    @new.workflow(name="wf.shrinking")
    def v2() -> None:
        futures = [taskflow.start_step(pick2, n) for n in range(2)]
        taskflow.select(futures[:1])

    [handle] = new.recover()
    with pytest.raises(NonDeterministicWorkflowError, match="recorded choice is '1'"):
        handle.get()


# -- the workflow waits for what it started ---------------------------------------------------
def test_a_step_left_running_is_recorded_before_the_workflow_finishes(app: Taskflow) -> None:
    """A step started and never awaited: the workflow's outcome is written only once the
    step has recorded its own, so it is never lost."""
    started, release = threading.Event(), threading.Event()
    returned = threading.Event()

    @app.step(name="background")
    def background() -> str:
        started.set()
        _wait(release, "the release")
        return "recorded"

    @app.workflow(name="wf.fire_and_forget")
    def wf() -> str:
        taskflow.start_step(background)
        return "returned"

    def run() -> None:
        wf.apply(workflow_id="forget")
        returned.set()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        _wait(started, "the step to start")
        # Bounded on purpose: this checks that something does NOT happen while it runs.
        assert not returned.wait(0.3), "the workflow finished while its step still ran"
        assert app.retrieve("forget").status is Status.PENDING
    finally:
        release.set()
        runner.join(WAIT)
    assert returned.is_set()
    handle = app.retrieve("forget")
    assert handle.get() == "returned"
    [step] = handle.steps()
    assert (step.name, step.status) == ("background", Status.SUCCESS)
    assert _outputs(app, "forget") == {0: ("background", '"recorded"')}


def test_a_cancel_found_by_a_concurrent_step_stops_the_workflow(app: Taskflow) -> None:
    started, release = threading.Event(), threading.Event()
    after_gather: list[str] = []

    @app.step(name="long")
    def long() -> str:
        started.set()
        _wait(release, "the release")
        return "done"

    @app.workflow(name="wf.cancelled")
    def wf() -> None:
        taskflow.gather([taskflow.start_step(long)])
        after_gather.append("ran")

    runner = threading.Thread(target=lambda: wf.apply(workflow_id="to-cancel"))
    runner.start()
    try:
        _wait(started, "the step to start")
        assert app.cancel("to-cancel") == ["to-cancel"]
    finally:
        release.set()
        runner.join(WAIT)
    assert not runner.is_alive()
    assert app.retrieve("to-cancel").status is Status.CANCELLED
    assert after_gather == []


def test_eager_mode_runs_concurrent_steps_the_same_way(app: Taskflow) -> None:
    app.conf.task_always_eager = True

    @app.step(name="double")
    def double(n: int) -> int:
        return n * 2

    @app.workflow(name="wf.eager")
    def wf(n: int) -> list[int]:
        futures = [taskflow.start_step(double, i) for i in range(n)]
        return [taskflow.select(futures).step_id, *taskflow.gather(futures)]

    handle = wf.delay(3)
    assert handle.status is Status.SUCCESS
    result = handle.get()
    assert result[1:] == [0, 2, 4]
    assert result[0] in (0, 1, 2)
    assert [s.name for s in handle.steps()] == ["double"] * 3 + ["taskflow.select"]


# -- misuse ------------------------------------------------------------------------------------
def test_outside_a_workflow_each_call_raises_a_clear_error(app: Taskflow) -> None:
    @app.step(name="plain")
    def plain() -> int:
        return 1

    with pytest.raises(TaskflowError, match=r"taskflow\.start_step\(\) was called outside"):
        taskflow.start_step(plain)
    with pytest.raises(TaskflowError, match=r"taskflow\.gather\(\) was called outside"):
        taskflow.gather([])
    with pytest.raises(TaskflowError, match=r"taskflow\.select\(\) was called outside"):
        taskflow.select([])


def test_inside_a_step_each_call_raises_a_clear_error(app: Taskflow) -> None:
    errors: list[str] = []

    @app.step(name="inner")
    def inner() -> int:
        return 1

    @app.step(name="outer")
    def outer() -> None:
        for call in (
            lambda: taskflow.start_step(inner),
            lambda: taskflow.gather([]),
            lambda: taskflow.select([]),
        ):
            try:
                call()
            except TaskflowError as exc:
                errors.append(str(exc))

    @app.workflow(name="wf.misuse")
    def wf() -> None:
        outer()

    wf.apply(workflow_id="misuse").get()
    assert len(errors) == 3
    for name, message in zip(("start_step", "gather", "select"), errors, strict=True):
        assert f"taskflow.{name}() is not allowed inside a step" in message
        assert "step 0 of workflow 'misuse'" in message


def test_a_plain_function_or_a_foreign_object_is_refused(app: Taskflow) -> None:
    seen: list[BaseException] = []

    def not_a_step() -> int:
        return 1

    @app.step(name="real")
    def real() -> int:
        return 1

    @app.workflow(name="wf.plain")
    def wf() -> None:
        for call in (
            lambda: taskflow.start_step(not_a_step),  # type: ignore[arg-type]
            lambda: taskflow.gather(["not a future"]),  # type: ignore[list-item]
            lambda: taskflow.select([]),
        ):
            try:
                call()
            except TaskflowError as exc:
                seen.append(exc)
        assert isinstance(taskflow.start_step(real), StepFuture)

    wf.apply().get()
    plain, foreign, empty = seen
    assert isinstance(plain, ConfigurationError)
    assert "not_a_step" in str(plain) and "@app.step" in str(plain)
    assert "takes futures returned by taskflow.start_step()" in str(foreign)
    assert "taskflow.select() was given no futures" in str(empty)


# -- a real worker killed between start_step and gather ---------------------------------------
def _raw_steps(database_url: str, workflow_id: str) -> dict[int, tuple[str, str | None]]:
    """``(name, output)`` by step id, read with a plain driver (not taskflow)."""
    rows: list[tuple[Any, ...]]
    query = "SELECT step_id, name, output FROM {} WHERE workflow_id = {} ORDER BY step_id"
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = conn.execute(query.format("steps", "?"), (workflow_id,)).fetchall()
    else:
        with psycopg.connect(database_url, autocommit=True) as conn:
            rows = conn.execute(
                query.format("taskflow.steps", "%s"),
                (workflow_id,),
            ).fetchall()
    return {int(r[0]): (str(r[1]), r[2]) for r in rows}


@pytest.mark.slow
def test_sigkill_between_start_step_and_gather_loses_nothing_and_keeps_the_select(
    database_url: str, workers: Workers, worker_dir: Path
) -> None:
    """The worker dies while ``b`` runs, after ``a``, ``c`` and the select (``c`` won) were
    recorded. A new worker finishes the workflow: ``a`` and ``c`` never run again, ``b``
    runs again and completes once, and the replayed ``select`` returns ``c`` although ``a``
    (first in its list, finished from its record) would win a fresh race."""
    producer = concurrentapp.create_app(database_url)
    try:
        doomed = workers.start(database_url, "-c", "1", app=concurrentapp.APP, name="doomed")
        handle = producer.fanout.delay()
        wid = handle.id

        def recorded(*ids: int) -> bool:
            doomed.assert_alive()
            return set(ids) <= set(_raw_steps(database_url, wid))

        wait_for(lambda: recorded(2, 3), "c and the select to be recorded")
        wait_for(lambda: concurrentapp.started_pid(worker_dir, wid, "b") is not None, "b")
        concurrentapp.release(worker_dir, wid, "a")
        wait_for(lambda: recorded(0), "a to be recorded")
        victim = concurrentapp.started_pid(worker_dir, wid, "b")
        assert victim is not None
        assert victim in doomed.children(), (victim, doomed.children())
        assert set(_raw_steps(database_url, wid)) == {0, 2, 3}  # b still runs

        os.kill(doomed.pid, signal.SIGKILL)
        assert doomed.wait_exit() == -signal.SIGKILL
        wait_for(lambda: not pid_alive(victim), "the dead worker's child to die with it")
        # Released only now, so the killed process cannot have finished b.
        concurrentapp.release(worker_dir, wid, "b")
        survivor = workers.start(database_url, "-c", "1", app=concurrentapp.APP, name="next")

        assert handle.get(timeout=PROCESS_LIMIT) == {"winner": "c", "values": ["a", "b", "c"]}
    finally:
        producer.close()

    runs = concurrentapp.read_runs(worker_dir)
    counts = {
        (event, label): sum(1 for e, w, lab, _ in runs if (e, w, lab) == (event, wid, label))
        for event in ("start", "end")
        for label in "abc"
    }
    assert counts == {
        ("start", "a"): 1,
        ("end", "a"): 1,
        ("start", "b"): 2,
        ("end", "b"): 1,
        ("start", "c"): 1,
        ("end", "c"): 1,
    }, runs
    b_runs = [(e, pid) for e, w, lab, pid in runs if (w, lab) == (wid, "b")]
    assert b_runs[0] == ("start", victim)
    assert b_runs[1][1] != victim and b_runs[2] == ("end", b_runs[1][1])
    assert b_runs[1][1] in survivor.children()
    branches = [(lab, pid) for e, w, lab, pid in runs if (e, w) == ("branch", wid)]
    assert [lab for lab, _ in branches] == ["c", "c"]
    assert branches[0][1] == victim
    assert _raw_steps(database_url, wid) == {
        0: ("ca.gated", '"a"'),
        1: ("ca.gated", '"b"'),
        2: ("ca.quick", '"c"'),
        3: ("taskflow.select", "1"),
    }
    info = handle.info()
    assert (info.status, info.attempts) == (Status.SUCCESS, 2)
    assert status_counts(database_url) == Counter({"SUCCESS": 1})
