"""Crash recovery with real processes and real ``kill -9``, on both dialects.

A child process runs a workflow of :mod:`crashapp` and blocks at a chosen boundary; the test
SIGKILLs it, then a new process calls ``app.recover()``. Side effects are counted in a file
outside the database, so "never re-run" is checked against what really ran.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from taskflow import MaxRecoveryAttemptsExceededError, Status, Taskflow

from . import crashapp
from .helpers import (
    crash_env,
    finish,
    run,
    side_effect_counts,
    side_effects,
    spawn,
    start_and_kill,
    wait_for,
    workflow_ids,
)

pytestmark = pytest.mark.slow

STEPS = [f"step{i}" for i in range(1, 6)]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Folder for side effects and markers, outside the database."""
    path = tmp_path / "crash"
    path.mkdir()
    return path


@pytest.mark.parametrize("boundary", range(6))
def test_sigkill_at_every_step_boundary_then_recover_in_a_new_process(
    database_url: str, workdir: Path, make_app: Callable[..., Taskflow], boundary: int
) -> None:
    """Killed after step ``boundary`` (0: before step 1, 5: after step 5, before the workflow
    finished): recovery never re-runs steps 1..boundary, runs the rest once, and the result
    is right."""
    workflow_id = f"five-steps-killed-at-{boundary}"
    order = 10
    dead_pid = start_and_kill(
        crash_env(database_url, workdir, block_at=str(boundary)),
        workdir,
        str(boundary),
        "start",
        crashapp.FIVE_STEPS,
        workflow_id,
        str(order),
    )

    observer = make_app("observer")
    handle = observer.retrieve(workflow_id)
    assert handle.status is Status.PENDING
    assert [s.name for s in handle.steps()] == STEPS[:boundary]
    assert side_effects(workdir) == [(name, dead_pid) for name in STEPS[:boundary]]
    assert handle.info().attempts == 1

    out = run(crash_env(database_url, workdir), "recover")

    recovered = {r["id"]: r for r in out["recovered"]}
    assert list(recovered) == [workflow_id]
    assert recovered[workflow_id]["status"] == "SUCCESS"
    assert recovered[workflow_id]["result"] == crashapp.expected_five_steps(order)

    effects = side_effects(workdir)
    assert side_effect_counts(workdir) == Counter(STEPS), effects
    assert effects[:boundary] == [(name, dead_pid) for name in STEPS[:boundary]]
    after = {pid for _, pid in effects[boundary:]}
    if boundary < 5:
        assert len(after) == 1
        assert dead_pid not in after, "a step after the crash ran in the dead process"

    info = handle.info()
    assert info.status is Status.SUCCESS
    assert info.attempts == 2
    assert info.executor is not None
    assert f":{dead_pid}:" not in info.executor
    assert [(s.name, s.status) for s in handle.steps()] == [(n, Status.SUCCESS) for n in STEPS]
    assert handle.get(timeout=10) == crashapp.expected_five_steps(order)


def test_sigkill_inside_a_step_runs_that_step_again_and_only_that_one(
    database_url: str, workdir: Path, make_app: Callable[..., Taskflow]
) -> None:
    """Killed inside step 3, after its side effect but before its checkpoint: steps run at
    least once, so step 3 runs again; steps 1-2 do not, and 4-5 run once."""
    workflow_id = "killed-inside-step-3"
    dead_pid = start_and_kill(
        crash_env(database_url, workdir, block_at="inside-3"),
        workdir,
        "inside-3",
        "start",
        crashapp.FIVE_STEPS,
        workflow_id,
        "3",
    )
    handle = make_app("observer").retrieve(workflow_id)
    assert [s.name for s in handle.steps()] == STEPS[:2]

    out = run(crash_env(database_url, workdir), "recover")

    assert [r["id"] for r in out["recovered"]] == [workflow_id]
    assert out["recovered"][0]["result"] == crashapp.expected_five_steps(3)
    effects = side_effects(workdir)
    assert effects[:3] == [(name, dead_pid) for name in STEPS[:3]]
    assert [name for name, _ in effects[3:]] == ["step3", "step4", "step5"]
    assert dead_pid not in {pid for _, pid in effects[3:]}
    info = handle.info()
    assert (info.status, info.attempts) == (Status.SUCCESS, 2)
    assert len(handle.steps()) == 5


def test_a_workflow_whose_process_keeps_dying_is_parked(
    database_url: str, workdir: Path, make_app: Callable[..., Taskflow]
) -> None:
    """``max_recovery_attempts=1``: the first recovery runs (and dies too), the next one parks
    the workflow as MAX_RECOVERY_ATTEMPTS_EXCEEDED instead of running it a third time."""
    workflow_id = "keeps-dying"
    blocking = crash_env(database_url, workdir, block_at="3")
    first = start_and_kill(blocking, workdir, "3", "start", crashapp.FIVE_STEPS, workflow_id, "1")
    second = start_and_kill(blocking, workdir, "3", "recover")
    handle = make_app("observer").retrieve(workflow_id)
    assert handle.status is Status.PENDING
    assert handle.info().attempts == 2
    # The recovery replayed steps 1-3 from their checkpoints: they ran in the first process only.
    assert side_effects(workdir) == [(name, first) for name in STEPS[:3]]
    assert second != first

    out = run(crash_env(database_url, workdir), "recover")

    assert [r["id"] for r in out["recovered"]] == [workflow_id]
    parked = out["recovered"][0]
    assert parked["status"] == "MAX_RECOVERY_ATTEMPTS_EXCEEDED"
    assert parked["error"].startswith("MaxRecoveryAttemptsExceededError")
    info = handle.info()
    assert (info.status, info.attempts) == (Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED, 3)
    with pytest.raises(MaxRecoveryAttemptsExceededError, match=workflow_id):
        handle.get(timeout=10)
    assert side_effects(workdir) == [(name, first) for name in STEPS[:3]]
    # Parked is final: another recovery leaves it alone.
    assert run(crash_env(database_url, workdir), "recover") == {"recovered": []}


CHILD_ATTEMPTS = {"parent-1": 1, "child-1": 2, "parent-2": 1}


@pytest.mark.parametrize("boundary", list(CHILD_ATTEMPTS))
def test_sigkill_around_a_child_workflow_then_recover(
    database_url: str, workdir: Path, make_app: Callable[..., Taskflow], boundary: str
) -> None:
    """The parent process dies before, inside, or after its child workflow: recovery finishes
    both, no step of either runs twice, and the parent records the child as one step."""
    parent_id = f"parent-killed-at-{boundary}"
    order = 5
    start_and_kill(
        crash_env(database_url, workdir, block_at=boundary),
        workdir,
        boundary,
        "start",
        crashapp.PARENT,
        parent_id,
        str(order),
    )
    before = workflow_ids(database_url)
    assert parent_id in before
    assert len(before) == (1 if boundary == "parent-1" else 2)

    out = run(crash_env(database_url, workdir), "recover")

    observer = make_app("observer")
    parent = observer.retrieve(parent_id)
    steps = parent.steps()
    assert [s.name for s in steps] == ["parent_step1", crashapp.CHILD, "parent_step2"]
    child_id = steps[1].child_workflow_id
    assert child_id is not None
    assert workflow_ids(database_url) == sorted([parent_id, child_id])
    recovered = {r["id"]: r for r in out["recovered"]}
    assert parent_id in recovered
    assert recovered[parent_id]["status"] == "SUCCESS"
    assert recovered[parent_id]["result"] == crashapp.expected_parent(order)
    if boundary == "child-1":
        # The child was left PENDING by the dead process: recovered too (through its parent).
        assert recovered[child_id]["status"] == "SUCCESS"

    assert side_effect_counts(workdir) == Counter(
        ["parent_step1", "child_step1", "child_step2", "parent_step2"]
    )
    child = observer.retrieve(child_id)
    assert child.info().parent_id == parent_id
    assert child.info().attempts == CHILD_ATTEMPTS[boundary]
    assert [s.name for s in child.steps()] == ["child_step1", "child_step2"]
    assert child.get(timeout=10) == (order + 1 + 10) * 10
    assert parent.info().attempts == 2
    assert parent.get(timeout=10) == crashapp.expected_parent(order)


def test_concurrent_start_of_one_workflow_id_from_many_processes_runs_it_once(
    database_url: str, workdir: Path, make_app: Callable[..., Taskflow]
) -> None:
    """Six processes, released together, start the same workflow id: it runs once, in one of
    them, and every process gets that run's result."""
    racers = 6
    env = crash_env(database_url, workdir)
    env[crashapp.RACERS_ENV] = str(racers)
    procs: list[subprocess.Popen[str]] = [spawn(env, "race", "race-1", "7") for _ in range(racers)]
    try:

        def all_ready() -> bool:
            for proc in procs:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    raise AssertionError(f"racer exited early ({proc.returncode}):\n{out}\n{err}")
            return len(list(workdir.glob("ready-*"))) == racers

        wait_for(all_ready, "every racer to be ready")
        (workdir / crashapp.GO).write_text("", encoding="utf-8")
        outs = [finish(proc) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    assert {o["status"] for o in outs} == {"SUCCESS"}
    results = [o["result"] for o in outs]
    assert all(r == results[0] for r in results), results
    winner = results[0]["pid"]
    assert winner in {o["pid"] for o in outs}
    assert results[0]["order"] == 7
    assert side_effects(workdir) == [("race_body", winner), ("race_step", winner)]
    assert workflow_ids(database_url) == ["race-1"]
    info = make_app("observer").retrieve("race-1").info()
    assert info.status is Status.SUCCESS
    assert info.attempts == 1
