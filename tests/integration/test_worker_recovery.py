"""``taskflow worker`` under load, under ``kill -9`` and through warm shutdowns, on both
dialects.

Workers are real processes running :mod:`workerapp`; side effects are counted in a file
outside the database, so "ran once" is checked against what really ran. The blocking step of
:data:`workerapp.SLOW` lets a test kill a process while a workflow is known to be inside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from taskflow import Status

from . import workerapp
from .helpers import (
    PROCESS_LIMIT,
    Workers,
    blocked_pid,
    pid_alive,
    read_side_effects,
    release,
    status_counts,
    step_counts,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.slow

Producer = Callable[..., workerapp.WorkerApp]
SLOW_RESULT = ["first", "wait", "last"]
RECOVERY_MARGIN = 5.0
"""Seconds allowed on top of the heartbeat timeout for a dead worker's work to finish
elsewhere (a sweep every heartbeat interval, then a claim; a slow CI machine)."""
CHILD_RECOVERY_LIMIT = 15.0
"""Generous bound on the recovery after a child is killed (it is meant to be immediate)."""


def wait_blocked(workdir: Path, workflow_ids: list[str]) -> dict[str, int]:
    """Wait until the blocking step of every workflow waits; return their pids."""
    wait_for(
        lambda: all(blocked_pid(workdir, wid) is not None for wid in workflow_ids),
        f"{len(workflow_ids)} slow workflow(s) to reach their blocking step",
    )
    pids: dict[str, int] = {}
    for wid in workflow_ids:
        pid = blocked_pid(workdir, wid)
        assert pid is not None
        pids[wid] = pid
    return pids


def pids_of(workdir: Path, workflow_id: str, step: str) -> list[int]:
    """Pids that ran ``step`` of ``workflow_id``, in order."""
    return [pid for _, wid, s, pid in read_side_effects(workdir) if (wid, s) == (workflow_id, step)]


def test_a_thousand_workflows_through_two_children_run_once_each(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """1,000 one-step workflows enqueued in one ``delay_many`` while ``taskflow worker -c 2``
    runs: all SUCCESS, each step's side effect exactly once, all in the worker's children."""
    wa = make_producer(database_url)
    worker = workers.start(database_url, "-c", "2")
    children = worker.children()
    assert len(children) == 2, children

    started = time.monotonic()
    handles = wa.one_step.delay_many([("bulk",)] * 1000)
    ids = [h.id for h in handles]
    assert len(set(ids)) == 1000

    wait_for(
        lambda: status_counts(database_url)["SUCCESS"] == 1000,
        "1,000 workflows to succeed",
        limit=150,
        interval=0.2,
    )
    elapsed = time.monotonic() - started
    print(f"\n1,000 workflows through `taskflow worker -c 2` in {elapsed:.2f}s")

    assert status_counts(database_url) == Counter({"SUCCESS": 1000})
    assert step_counts(worker_dir) == Counter({(wid, "touch"): 1 for wid in ids})
    pids = {pid for _, _, _, pid in read_side_effects(worker_dir)}
    assert pids <= children, (pids, children)
    assert worker.children() == children, "a child was replaced while running no-op work"
    assert handles[0].get(timeout=10) == "bulk"
    assert handles[-1].info().attempts == 1
    worker.assert_alive()


def test_sigkill_of_a_child_mid_workflow_gives_its_work_back_at_once(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """A prefork child killed inside a step: its parent hands its workflows back (one
    recovery attempt) and forks a replacement; with a second worker running, everything
    completes, and no step that had completed runs again."""
    wa = make_producer(database_url)
    first = workers.start(database_url, "-c", "2", threads=2, name="first")
    slows = [wa.slow.delay("slow") for _ in range(2)]
    ids = [h.id for h in slows]
    blocked = wait_blocked(worker_dir, ids)
    first_children = first.children()
    assert set(blocked.values()) <= first_children, (blocked, first_children)
    second = workers.start(database_url, "-c", "1", name="second")

    victim = blocked[ids[0]]
    killed = [wid for wid in ids if blocked[wid] == victim]
    survived = [wid for wid in ids if blocked[wid] != victim]
    assert all(h.info().attempts == 1 for h in slows)
    assert all(h.status is Status.PENDING for h in slows)

    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    # Released only once it is gone, so the killed process cannot finish the step.
    wait_for(lambda: not pid_alive(victim), "the killed child to be gone", limit=10)
    release(worker_dir, *ids)
    assert slows[0].get(timeout=PROCESS_LIMIT) == SLOW_RESULT
    recovery = time.monotonic() - killed_at
    print(f"\nkilled child {victim}: its workflow finished elsewhere {recovery:.2f}s later")
    assert recovery < CHILD_RECOVERY_LIMIT

    more = wa.three_steps.delay_many([("three",)] * 10)
    for h in [*slows, *more]:
        assert h.get(timeout=PROCESS_LIMIT) in (SLOW_RESULT, ["s1", "s2", "s3"])

    counts = step_counts(worker_dir)
    for wid in killed:
        # "wait" was running when the child died: it runs again, in another process; the
        # completed step before it does not.
        assert (counts[(wid, "first")], counts[(wid, "wait")], counts[(wid, "last")]) == (1, 2, 1)
        waits = pids_of(worker_dir, wid, "wait")
        assert waits[0] == victim and waits[1] != victim, waits
        assert pids_of(worker_dir, wid, "last") != [victim]
        info = wa.app.retrieve(wid).info()
        assert (info.status, info.attempts) == (Status.SUCCESS, 2)
    for wid in survived:
        assert (counts[(wid, "first")], counts[(wid, "wait")], counts[(wid, "last")]) == (1, 1, 1)
        assert wa.app.retrieve(wid).info().attempts == 1
    for h in more:
        assert [counts[(h.id, s)] for s in ("s1", "s2", "s3")] == [1, 1, 1]
        assert h.info().attempts == 1

    assert not pid_alive(victim)
    wait_for(lambda: len(first.children()) == 2, "the killed child to be replaced")
    assert victim not in first.children()
    first.assert_alive()
    second.assert_alive()


def test_sigkill_of_a_whole_worker_mid_workflow_is_recovered_by_another_worker(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """The worker process itself killed with SIGKILL: its children die with it, and the other
    worker gives its workflow back to the queue once the heartbeat is older than
    ``worker_heartbeat_timeout``; it resumes from its last completed step."""
    wa = make_producer(database_url)
    doomed = workers.start(database_url, "-c", "1", name="doomed")
    slow = wa.slow.delay("slow")
    victim = wait_blocked(worker_dir, [slow.id])[slow.id]
    assert victim in doomed.children()
    survivor = workers.start(database_url, "-c", "1", name="survivor")

    killed_at = time.monotonic()
    os.kill(doomed.pid, signal.SIGKILL)
    assert doomed.wait_exit() == -signal.SIGKILL
    wait_for(lambda: not pid_alive(victim), "the dead worker's child to die with it", limit=10)
    # Released only once the child is gone, so the dead worker's child cannot finish it.
    release(worker_dir, slow.id)

    assert slow.get(timeout=PROCESS_LIMIT) == SLOW_RESULT
    recovery = time.monotonic() - killed_at
    limit = workerapp.HEARTBEAT_TIMEOUT + RECOVERY_MARGIN
    print(
        f"\nkilled worker {doomed.pid}: its workflow finished on the other worker "
        f"{recovery:.2f}s later (heartbeat timeout {workerapp.HEARTBEAT_TIMEOUT}s)"
    )
    assert recovery < limit, f"recovery took {recovery:.2f}s, more than {limit}s"

    counts = step_counts(worker_dir)
    assert (counts[(slow.id, "first")], counts[(slow.id, "wait")], counts[(slow.id, "last")]) == (
        1,
        2,
        1,
    )
    waits = pids_of(worker_dir, slow.id, "wait")
    assert waits[0] == victim
    assert waits[1] in survivor.children(), (waits, survivor.children())
    info = slow.info()
    assert (info.status, info.attempts) == (Status.SUCCESS, 2)
    assert info.executor is not None and f":{survivor.pid}:" in info.executor, info.executor
    survivor.assert_alive()


def test_a_direct_call_in_a_process_that_dies_is_recovered_by_a_worker(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``wf(...)`` run directly in a process killed mid-workflow: that process heartbeated,
    so a live worker gives the workflow to a queue once its heartbeat is stale; it resumes
    from its last completed step."""
    wa = make_producer(database_url)
    worker = workers.start(database_url, "-c", "1")
    wid = "direct-call"
    direct = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.workerapp", "slow", wid, "direct"],
        env=worker_env(database_url, worker_dir),
        cwd=worker_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:

        def blocked() -> bool:
            if direct.poll() is not None:
                out, err = direct.communicate()
                raise AssertionError(
                    f"the direct call exited with {direct.returncode}:\n{out!r}\n{err!r}"
                )
            return blocked_pid(worker_dir, wid) is not None

        wait_for(blocked, "the direct call to reach its blocking step")
        assert blocked_pid(worker_dir, wid) == direct.pid
    finally:
        direct.kill()
        direct.communicate(timeout=PROCESS_LIMIT)
    killed_at = time.monotonic()
    release(worker_dir, wid)

    handle = wa.app.retrieve(wid)
    assert handle.get(timeout=PROCESS_LIMIT) == SLOW_RESULT
    recovery = time.monotonic() - killed_at
    print(f"\nkilled direct caller {direct.pid}: recovered by a worker in {recovery:.2f}s")
    assert recovery < workerapp.HEARTBEAT_TIMEOUT + RECOVERY_MARGIN

    counts = step_counts(worker_dir)
    assert (counts[(wid, "first")], counts[(wid, "wait")], counts[(wid, "last")]) == (1, 2, 1)
    assert pids_of(worker_dir, wid, "first") == [direct.pid]
    assert pids_of(worker_dir, wid, "last")[0] in worker.children()
    info = handle.info()
    assert (info.status, info.attempts) == (Status.SUCCESS, 2)


def test_warm_shutdown_finishes_running_workflows_and_takes_no_new_work(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """SIGTERM while 20 workflows run (released only after the signal): the worker finishes
    all of them, exits 0, claims nothing enqueued after the signal; nothing is lost or run
    twice."""
    wa = make_producer(database_url)
    worker = workers.start(database_url, "-c", "2", threads=10)
    slows = wa.slow.delay_many([("warm",)] * 20)
    ids = [h.id for h in slows]
    wait_blocked(worker_dir, ids)

    worker.signal(signal.SIGTERM)
    worker.wait_for_log("SIGTERM: warm")
    late = wa.one_step.delay("late")
    release(worker_dir, *ids)
    assert worker.wait_exit() == 0, worker.log()

    for h in slows:
        info = h.info()
        assert (info.status, info.attempts) == (Status.SUCCESS, 1), info
        assert h.get(timeout=1) == SLOW_RESULT
    counts = step_counts(worker_dir)
    assert counts == Counter({(wid, step): 1 for wid in ids for step in SLOW_RESULT})
    assert late.status is Status.ENQUEUED, "a worker shutting down claimed new work"

    # Nothing was lost: the next worker runs what waited.
    workers.start(database_url, "-c", "1", name="next")
    assert late.get(timeout=PROCESS_LIMIT) == "late"


def test_warm_shutdown_past_its_grace_period_hands_work_back_without_an_attempt(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """SIGTERM with ``worker_shutdown_timeout`` short and workflows that do not finish in
    time: they go back to their queue (ENQUEUED, the attempt not counted), and a second
    worker finishes them from their last completed step."""
    wa = make_producer(database_url)
    first = workers.start(database_url, "-c", "1", shutdown_timeout=0.5, name="first")
    slows = wa.slow.delay_many([("grace",)] * 3)
    ids = [h.id for h in slows]
    blocked = wait_blocked(worker_dir, ids)

    signalled = time.monotonic()
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0, first.log()
    took = time.monotonic() - signalled
    assert took >= 0.5, f"the worker exited {took:.2f}s after SIGTERM, before its grace period"
    for pid in set(blocked.values()):
        assert not pid_alive(pid), "a child outlived its worker"
    for h in slows:
        info = h.info()
        assert info.status is Status.ENQUEUED, info
        assert [s.name for s in h.steps()] == ["wa.slow.first"]

    release(worker_dir, *ids)
    second = workers.start(database_url, "-c", "1", name="second")
    for h in slows:
        assert h.get(timeout=PROCESS_LIMIT) == SLOW_RESULT
        assert h.info().attempts == 1, "a warm shutdown counted a recovery attempt"
    counts = step_counts(worker_dir)
    for wid in ids:
        assert (counts[(wid, "first")], counts[(wid, "wait")], counts[(wid, "last")]) == (1, 2, 1)
        assert pids_of(worker_dir, wid, "first") == [blocked[wid]]
        assert pids_of(worker_dir, wid, "last")[0] in second.children()
