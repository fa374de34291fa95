"""Celery habits through a real ``taskflow worker``: retries, bound tasks, time limits,
countdown and expiry, priorities, routing with ``-Q``, child recycling and signals."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from taskflow import Status, TimeLimitExceeded

from . import workerapp
from .helpers import (
    PROCESS_LIMIT,
    Workers,
    pid_alive,
    read_events,
    read_side_effects,
    step_counts,
    wait_for,
)

pytestmark = pytest.mark.slow

Producer = Callable[..., workerapp.WorkerApp]


def pids_of(workdir: Path, workflow_id: str, step: str) -> list[int]:
    """Pids that ran ``step`` of ``workflow_id``, in order."""
    return [pid for _, wid, s, pid in read_side_effects(workdir) if (wid, s) == (workflow_id, step)]


def test_autoretry_runs_the_workflow_again_without_rerunning_completed_steps(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``autoretry_for``: the workflow fails twice with a listed exception and is retried
    each time; the third try succeeds. The step before the failure ran once."""
    wa = make_producer(database_url)
    worker = workers.start(database_url, "-c", "1")
    handle = wa.flaky.delay("flaky")

    assert handle.get(timeout=PROCESS_LIMIT) == workerapp.FLAKY_FAILURES + 1
    counts = step_counts(worker_dir)
    assert counts[(handle.id, "before")] == 1
    assert counts[(handle.id, "try")] == workerapp.FLAKY_FAILURES + 1
    assert counts[(handle.id, "after")] == 1
    assert set(pids_of(worker_dir, handle.id, "try")) <= worker.children()
    assert handle.status is Status.SUCCESS
    assert [s.name for s in handle.steps()] == ["wa.flaky.before", "wa.flaky.after"]


def test_a_bound_task_sees_its_request_and_retries_with_a_countdown(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``bind=True``: ``self.request`` holds the id, name, args and retry count;
    ``self.retry(countdown=...)`` runs it again no sooner than the countdown (and not after
    ``default_retry_delay``, 30 s)."""
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1")
    handle = wa.bound.delay(7)

    result = handle.get(timeout=PROCESS_LIMIT)
    expected = {"id": handle.id, "name": workerapp.BOUND, "args": [7], "called_directly": False}
    assert result == {**expected, "retries": 2, "n": 7}
    seen = [e for e in read_events(worker_dir) if e["event"] == "bound"]
    assert [e["retries"] for e in seen] == [0, 1, 2]
    for e in seen:
        assert {k: e[k] for k in expected} == expected
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(seen)]
    assert all(workerapp.RETRY_COUNTDOWN - 0.01 <= gap < 10 for gap in gaps), gaps


def test_soft_time_limit_raises_inside_the_workflow(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``soft_time_limit``: ``SoftTimeLimitExceeded`` is raised in the running code, which
    catches it and returns normally."""
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1")
    handle = wa.soft.delay("soft")

    assert handle.get(timeout=PROCESS_LIMIT) == "caught"
    counts = step_counts(worker_dir)
    assert (counts[(handle.id, "start")], counts[(handle.id, "caught")]) == (1, 1)
    info = handle.info()
    assert info.status is Status.SUCCESS
    assert info.started_at is not None and info.finished_at is not None
    ran = (info.finished_at - info.started_at).total_seconds()
    assert ran < 10, f"the soft limit of {workerapp.SOFT_TIME_LIMIT}s fired after {ran:.2f}s"


def test_time_limit_ends_the_child_and_records_time_limit_exceeded(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``time_limit``: the child running the overdue workflow is ended, the workflow is ERROR
    with ``TimeLimitExceeded``, a new child replaces it and the next workflow runs."""
    wa = make_producer(database_url)
    worker = workers.start(database_url, "-c", "1")
    handle = wa.hard.delay("hard")
    wait_for(lambda: bool(pids_of(worker_dir, handle.id, "start")), "the workflow to start")
    [overdue] = pids_of(worker_dir, handle.id, "start")
    assert overdue in worker.children()

    with pytest.raises(TimeLimitExceeded, match=handle.id):
        handle.get(timeout=PROCESS_LIMIT)
    info = handle.info()
    assert info.status is Status.ERROR
    assert info.error is not None, info
    assert info.error.type_name == "taskflow.errors.TimeLimitExceeded", info.error
    assert step_counts(worker_dir)[(handle.id, "overran")] == 0
    wait_for(lambda: not pid_alive(overdue), "the overdue child to be ended", limit=10)
    wait_for(lambda: len(worker.children()) == 1, "a replacement child")
    assert overdue not in worker.children()

    after = wa.one_step.delay("after")
    assert after.get(timeout=PROCESS_LIMIT) == "after"
    assert pids_of(worker_dir, after.id, "touch")[0] in worker.children()
    assert handle.status is Status.ERROR, "the timed-out workflow was run again"
    worker.assert_alive()


def test_countdown_keeps_a_workflow_delayed_until_it_is_due(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``countdown``: DELAYED until due, then run; work enqueued after it without a
    countdown runs first."""
    countdown = 1.5
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1")
    enqueued_at = time.monotonic()
    delayed = wa.one_step.apply_async(("delayed",), countdown=countdown)
    assert delayed.status is Status.DELAYED
    prompt = wa.one_step.delay("prompt")

    assert prompt.get(timeout=PROCESS_LIMIT) == "prompt"
    if time.monotonic() - enqueued_at < countdown - 0.2:
        assert delayed.status is Status.DELAYED
    assert delayed.get(timeout=PROCESS_LIMIT) == "delayed"
    info = delayed.info()
    assert info.started_at is not None
    waited = (info.started_at - info.created_at).total_seconds()
    assert waited >= countdown - 0.002, f"started {waited:.3f}s after enqueue"
    assert waited < countdown + 10
    order = [wid for _, wid, _, _ in read_side_effects(worker_dir)]
    assert order == [prompt.id, delayed.id]


def test_expires_cancels_a_workflow_not_started_in_time(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``expires``: a workflow no worker started before its expiry is CANCELLED and never
    runs; one without expiry enqueued with it runs."""
    expires = 0.3
    wa = make_producer(database_url)
    expired = wa.one_step.apply_async(("expired",), expires=expires)
    kept = wa.one_step.delay("kept")
    assert expired.status is Status.ENQUEUED
    enqueued_at = time.monotonic()
    wait_for(lambda: time.monotonic() - enqueued_at > expires + 0.1, "the expiry to pass")

    workers.start(database_url, "-c", "1")
    assert kept.get(timeout=PROCESS_LIMIT) == "kept"
    wait_for(lambda: expired.status is Status.CANCELLED, "the expired workflow to be cancelled")
    assert [wid for _, wid, _, _ in read_side_effects(worker_dir)] == [kept.id]


def test_priorities_run_in_order_on_a_single_slot_worker(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``-P solo``, one slot: no priority first, then lower priority first, FIFO within a
    priority."""
    wa = make_producer(database_url)
    plan: list[tuple[str, int | None]] = [
        ("p5", 5),
        ("p1-first", 1),
        ("none-first", None),
        ("p3", 3),
        ("p1-second", 1),
        ("none-second", None),
        ("p2", 2),
    ]
    handles = {
        label: wa.one_step.apply_async((label,), priority=priority) for label, priority in plan
    }
    worker = workers.start(database_url, "-P", "solo")
    assert worker.children() == set()
    for handle in handles.values():
        assert handle.get(timeout=PROCESS_LIMIT) in handles
    ran = [label for label, _, _, _ in read_side_effects(worker_dir)]
    assert ran == ["none-first", "none-second", "p1-first", "p1-second", "p2", "p3", "p5"]
    assert {pid for _, _, _, pid in read_side_effects(worker_dir)} == {worker.pid}


def test_a_worker_serves_only_the_queues_given_with_q(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``-Q a``: the worker runs queue a's work, enqueued after queue b's, and never b's; a
    worker on b runs b's."""
    wa = make_producer(database_url)
    on_b = [wa.one_step.apply_async(("b",), queue=workerapp.QUEUE_B) for _ in range(3)]
    on_a = [wa.one_step.apply_async(("a",), queue=workerapp.QUEUE_A) for _ in range(3)]
    worker_a = workers.start(database_url, "-c", "1", "-Q", workerapp.QUEUE_A, name="wa")

    for handle in on_a:
        assert handle.get(timeout=PROCESS_LIMIT) == "a"
        assert handle.info().queue == workerapp.QUEUE_A
    assert [h.status for h in on_b] == [Status.ENQUEUED] * 3
    assert {label for label, _, _, _ in read_side_effects(worker_dir)} == {"a"}

    worker_b = workers.start(database_url, "-c", "1", "-Q", workerapp.QUEUE_B, name="wb")
    for handle in on_b:
        assert handle.get(timeout=PROCESS_LIMIT) == "b"
    pids: dict[str, set[int]] = {"a": set(), "b": set()}
    for label, _, _, pid in read_side_effects(worker_dir):
        pids[label].add(pid)
    assert pids["a"] <= worker_a.children() | {worker_a.pid}
    assert pids["b"] <= worker_b.children() | {worker_b.pid}


def test_max_tasks_per_child_replaces_children(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``--max-tasks-per-child 2`` with one workflow per child at a time: 6 workflows run in
    3 successive children, 2 each, and all complete."""
    wa = make_producer(database_url)
    worker = workers.start(database_url, "-c", "1", "--max-tasks-per-child", "2", threads=1)
    handles = wa.one_step.delay_many([("recycled",)] * 6)

    for handle in handles:
        assert handle.get(timeout=PROCESS_LIMIT) == "recycled"
    per_child = Counter(pid for _, _, _, pid in read_side_effects(worker_dir))
    assert sorted(per_child.values()) == [2, 2, 2], per_child
    assert worker.pid not in per_child
    wait_for(
        lambda: len(worker.children()) == 1 and not worker.children() & set(per_child),
        "the last child, which ran its 2 workflows, to be replaced",
    )
    worker.assert_alive()


def test_worker_and_task_signals_fire_in_the_worker_children(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``worker_process_init`` fires once in each prefork child; ``task_prerun`` and
    ``task_postrun`` fire around each workflow, in the child that runs it."""
    wa = make_producer(database_url)
    worker = workers.start(database_url, "-c", "2")
    children = worker.children()
    handles = wa.one_step.delay_many([("signalled",)] * 3)
    for handle in handles:
        assert handle.get(timeout=PROCESS_LIMIT) == "signalled"

    def inits_seen() -> int:
        return sum(1 for e in read_events(worker_dir) if e["event"] == "worker_process_init")

    wait_for(lambda: inits_seen() >= len(children), "worker_process_init in every child")
    events = read_events(worker_dir)
    inits = [e for e in events if e["event"] == "worker_process_init"]
    assert sorted(e["pid"] for e in inits) == sorted(children)
    assert all(e["ppid"] == worker.pid for e in inits)
    for handle in handles:
        mine = [e for e in events if e.get("id") == handle.id]
        assert [e["event"] for e in mine] == ["task_prerun", "task_postrun"], mine
        assert mine[1]["state"] == "SUCCESS"
        [runner] = pids_of(worker_dir, handle.id, "touch")
        assert mine[0]["pid"] == mine[1]["pid"] == runner
        assert runner in children
