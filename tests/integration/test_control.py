"""cancel, resume, set_delay and the durable timeout, end to end: in this process on both
dialects, and through real ``taskflow worker`` processes (:mod:`workerapp`), whose side
effects are counted in a file outside the database, so "never ran" is checked against what
really ran."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from taskflow import (
    ConfigurationError,
    Status,
    Taskflow,
    UnknownQueueError,
    UnknownWorkflowError,
    WorkflowCancelledError,
    WorkflowStatusError,
)
from taskflow.clock import now_ms
from taskflow.models import NewWorkflow

from . import workerapp
from .helpers import (
    PROCESS_LIMIT,
    FakeClock,
    Workers,
    blocked_pid,
    pid_alive,
    read_events,
    release,
    step_counts,
    wait_for,
)

Producer = Callable[..., workerapp.WorkerApp]
SLOW_RESULT = ["first", "wait", "last"]
SLOW_STEPS = ("first", "wait", "last")


def counts_of(workdir: Path, workflow_id: str, steps: tuple[str, ...] = SLOW_STEPS) -> list[int]:
    """How many times each of ``steps`` of ``workflow_id`` ran, in order."""
    counts = step_counts(workdir)
    return [counts[(workflow_id, s)] for s in steps]


def wait_blocked(workdir: Path, *workflow_ids: str) -> None:
    """Wait until the blocking step of each workflow waits."""
    wait_for(
        lambda: all(blocked_pid(workdir, wid) is not None for wid in workflow_ids),
        f"{', '.join(workflow_ids)} to reach the blocking step",
    )


def wait_status(app: Taskflow, workflow_id: str, status: Status) -> None:
    handle = app.retrieve(workflow_id)
    wait_for(lambda: handle.status is status, f"{workflow_id} to be {status.value}")


# -- in this process ---------------------------------------------------------------------------


def test_a_direct_run_cancelled_from_another_thread_stops_at_its_next_step(
    make_app: Callable[..., Taskflow],
) -> None:
    app = make_app()
    inside, go_on = threading.Event(), threading.Event()
    ran: list[str] = []

    @app.step(name="long")
    def long() -> int:
        ran.append("long")
        inside.set()
        assert go_on.wait(PROCESS_LIMIT)
        return 1

    @app.step(name="after")
    def after(x: int) -> int:
        ran.append("after")
        return x

    @app.workflow(name="wf.cancelled")
    def wf() -> int:
        return after(long())

    outcome: list[BaseException | int] = []

    def run() -> None:
        try:
            outcome.append(wf.apply(workflow_id="direct-1").get())
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    assert inside.wait(PROCESS_LIMIT)
    handle = app.retrieve("direct-1")
    assert handle.cancel() == ["direct-1"]
    # A child whose enqueue committed just after the cancel statement read the tree: the
    # workflow cancels it too when it notices its own cancellation.
    late = NewWorkflow(
        id="direct-1-late",
        name="wf.cancelled",
        status=Status.ENQUEUED,
        inputs='{"args":[],"kwargs":{}}',
        queue="default",
        parent_id="direct-1",
        created_at=now_ms(app.clock),
    )
    app.broker.enqueue([late], now_ms(app.clock))
    go_on.set()
    runner.join(PROCESS_LIMIT)

    assert len(outcome) == 1 and isinstance(outcome[0], WorkflowCancelledError), outcome
    assert ran == ["long"]
    assert handle.status is Status.CANCELLED
    # The step in flight finished and its outcome is kept, for a resume to replay.
    assert [(s.name, s.status) for s in handle.steps()] == [("long", Status.SUCCESS)]
    assert handle.cancel() == []  # finished: nothing more to cancel
    assert app.retrieve("direct-1-late").status is Status.CANCELLED


def test_a_timeout_cancels_the_children_too(make_app: Callable[..., Taskflow]) -> None:
    clock = FakeClock()
    app = make_app(clock=clock)

    @app.step(name="tick")
    def tick() -> int:
        return 1

    @app.workflow(name="wf.child")
    def child() -> int:
        return tick()

    @app.workflow(name="wf.parent", timeout=10)
    def parent() -> str:
        waiting = child.apply_async(countdown=3600)
        tick()
        clock.advance(11)
        tick()  # past the deadline: cancelled here, with its child
        return waiting.id

    handle = parent.apply(workflow_id="parent-1")
    assert handle.status is Status.CANCELLED
    assert app.retrieve("parent-1-0").status is Status.CANCELLED
    assert [s.name for s in handle.steps()] == ["wf.child.apply_async", "tick"]


def test_operator_actions_refuse_bad_input_and_wrong_statuses(
    make_app: Callable[..., Taskflow],
) -> None:
    clock = FakeClock()
    app = make_app(clock=clock)
    app.queue("flat")
    app.queue("sharded", partitioned=True)

    @app.workflow(name="wf.noop")
    def noop() -> None:
        """Nothing."""

    done = noop.apply(workflow_id="done")
    waiting = noop.apply_async(workflow_id="waiting")
    delayed = noop.apply_async(workflow_id="delayed", countdown=60)

    for seconds, until in [
        (None, None),
        (1, datetime(2030, 1, 1)),
        (-1, None),
        (math.nan, None),
        (True, None),
        ("5", None),
        (None, "2030-01-01"),
    ]:
        bad: Any = {"seconds": seconds, "until": until}
        with pytest.raises(ConfigurationError, match="set_delay"):
            delayed.set_delay(**bad)
    with pytest.raises(ConfigurationError, match=r"unpack a list: cancel\(\*ids\)"):
        app.cancel(["waiting"])  # type: ignore[arg-type]
    assert delayed.status is Status.DELAYED

    with pytest.raises(WorkflowStatusError, match=r"'done' \(SUCCESS\)") as refused:
        app.resume("done")
    assert "nothing was resumed" in str(refused.value)
    with pytest.raises(WorkflowStatusError, match=r"'waiting' \(ENQUEUED\)"):
        waiting.resume()
    with pytest.raises(UnknownWorkflowError, match="'nope'"):
        app.resume("done", "nope")
    with pytest.raises(WorkflowStatusError, match=r"'waiting' is ENQUEUED, not DELAYED"):
        app.set_delay("waiting", seconds=1)
    with pytest.raises(UnknownWorkflowError, match="'nope'"):
        app.set_delay("nope", seconds=1)
    with pytest.raises(UnknownWorkflowError, match="'nope'"):
        app.retrieve("done").__class__(app.broker, "nope").cancel()
    # Bulk cancel is lenient: the answer says which ids it cancelled.
    assert app.cancel("waiting", "nope", "done") == ["waiting"]
    with pytest.raises(UnknownQueueError, match="'nowhere'"):
        app.resume("waiting", queue="nowhere")
    with pytest.raises(ConfigurationError, match="'sharded' is partitioned"):
        app.resume("waiting", queue="sharded")
    assert [h.id for h in app.resume("waiting", queue="flat")] == ["waiting"]
    assert (waiting.status, waiting.info().queue) == (Status.ENQUEUED, "flat")
    assert done.status is Status.SUCCESS

    # A naive ``until`` is UTC, as Celery reads eta.
    delayed.set_delay(until=datetime(2030, 1, 1, 12, 0))
    stored = app.broker.get_workflow("delayed")
    assert stored is not None and stored.delay_until is not None
    assert stored.delay_until == int(datetime(2030, 1, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)
    delayed.set_delay(seconds=0)
    assert app.retrieve("delayed").status is Status.ENQUEUED


# -- through workers -----------------------------------------------------------------------------


@pytest.mark.slow
def test_cancelling_a_running_workflow_stops_it_at_its_next_step_and_resume_finishes_it(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1", threads=1)
    h = wa.slow.delay("cancel-running")
    wait_blocked(worker_dir, h.id)

    assert h.cancel() == [h.id]
    assert h.status is Status.CANCELLED
    release(worker_dir, h.id)
    # The step in flight finishes and is recorded; then the workflow stops.
    wait_for(lambda: len(h.steps()) == 2, "the step in flight to be recorded")
    # The worker's only slot is free again: the cancelled workflow no longer runs.
    assert wa.noop.delay().get(timeout=PROCESS_LIMIT) is None
    assert counts_of(worker_dir, h.id) == [1, 1, 0]
    assert h.status is Status.CANCELLED  # the worker's final write never overwrites it
    with pytest.raises(WorkflowCancelledError, match=h.id):
        h.get(timeout=PROCESS_LIMIT)

    assert h.resume() is h
    assert h.get(timeout=PROCESS_LIMIT) == SLOW_RESULT
    # Completed steps were replayed from their checkpoints, not run again.
    assert counts_of(worker_dir, h.id) == [1, 1, 1]
    assert h.info().attempts == 1


@pytest.mark.slow
def test_the_workers_final_write_never_overwrites_a_cancel(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1", threads=1)
    h = wa.app.get_workflow(workerapp.BODY_BLOCKS).delay("no-steps")
    wait_blocked(worker_dir, h.id)
    assert h.cancel() == [h.id]
    release(worker_dir, h.id)
    # It returns normally (no step noticed the cancel), and the worker writes that outcome
    # with its next claim, guarded by PENDING: the claim of this next workflow.
    assert wa.noop.delay().get(timeout=PROCESS_LIMIT) is None
    wait_for(
        lambda: any(
            e["event"] == "task_postrun" and e["id"] == h.id and e["state"] == "SUCCESS"
            for e in read_events(worker_dir)
        ),
        "the worker to finish the workflow's code",
    )
    assert wa.noop.delay().get(timeout=PROCESS_LIMIT) is None
    info = h.info()
    assert (info.status, info.error) == (Status.CANCELLED, None)
    with pytest.raises(WorkflowCancelledError):
        h.get(timeout=PROCESS_LIMIT)


@pytest.mark.slow
def test_a_cancelled_enqueued_workflow_never_starts(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1", threads=1)
    busy = wa.slow.delay("busy")
    wait_blocked(worker_dir, busy.id)
    waiting = wa.one_step.delay("never")
    assert waiting.status is Status.ENQUEUED  # the only slot is busy

    assert wa.app.cancel(waiting.id, "no-such-id") == [waiting.id]
    release(worker_dir, busy.id)
    assert busy.get(timeout=PROCESS_LIMIT) == SLOW_RESULT
    # Work enqueued after it runs: the worker went past the cancelled one.
    assert wa.noop.delay().get(timeout=PROCESS_LIMIT) is None
    info = waiting.info()
    assert (info.status, info.started_at) == (Status.CANCELLED, None)
    assert step_counts(worker_dir)[(waiting.id, "touch")] == 0


@pytest.mark.slow
def test_cancelling_a_parent_cancels_its_children_and_resume_of_all_of_them_undoes_it(
    postgres_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(postgres_url)
    # Only "default": the third child waits on a queue no worker serves.
    workers.start(postgres_url, "-c", "1", "-Q", "default", threads=3)
    parent = wa.app.get_workflow(workerapp.PARENT).delay("tree")
    running, later, elsewhere = (f"{parent.id}-{i}" for i in (1, 2, 3))
    wait_blocked(worker_dir, parent.id, running)
    app = wa.app
    statuses = [app.retrieve(i).status for i in (running, later, elsewhere)]
    assert statuses == [Status.PENDING, Status.DELAYED, Status.ENQUEUED]

    cancelled = app.cancel(parent.id)
    assert cancelled == [parent.id, *sorted([running, later, elsewhere])]
    for wid in cancelled:
        assert app.retrieve(wid).status is Status.CANCELLED, wid
    release(worker_dir, parent.id, running)
    wait_for(
        lambda: len(parent.steps()) == 5 and len(app.retrieve(running).steps()) == 2,
        "both running workflows to record the step in flight",
    )
    for _ in range(3):  # every slot is free again
        assert wa.noop.delay().get(timeout=PROCESS_LIMIT) is None
    assert counts_of(worker_dir, parent.id) == [1, 1, 0]
    assert counts_of(worker_dir, running) == [1, 1, 0]
    for wid in cancelled:
        assert app.retrieve(wid).status is Status.CANCELLED, wid

    # What cancel returned, resumed: the tree runs on from where it stopped.
    handles = app.resume(*cancelled)
    assert [h.id for h in handles] == cancelled
    assert handles[0].get(timeout=PROCESS_LIMIT) == [running, later, elsewhere]
    assert app.retrieve(running).get(timeout=PROCESS_LIMIT) == SLOW_RESULT
    assert counts_of(worker_dir, parent.id) == [1, 1, 1]
    assert counts_of(worker_dir, running) == [1, 1, 1]
    # Its hour has not passed; nobody serves queue b.
    assert app.retrieve(later).status is Status.DELAYED
    assert app.retrieve(elsewhere).status is Status.ENQUEUED


@pytest.mark.slow
def test_a_timeout_stops_a_workflow_stuck_in_a_step(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1", threads=1)
    h = wa.slow.apply_async(args=("stuck",), timeout=1.0)
    wait_blocked(worker_dir, h.id)
    # The step never returns by itself; the worker's queue maintenance cancels it anyway.
    wait_for(lambda: h.status is Status.CANCELLED, "the timeout to cancel the workflow")
    release(worker_dir, h.id)
    wait_for(lambda: len(h.steps()) == 2, "the step in flight to be recorded")
    assert wa.noop.delay().get(timeout=PROCESS_LIMIT) is None
    assert counts_of(worker_dir, h.id) == [1, 1, 0]
    assert h.status is Status.CANCELLED


@pytest.mark.slow
def test_a_timeout_that_passes_while_the_worker_is_dead_cancels_the_workflow(
    postgres_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(postgres_url)
    doomed = workers.start(postgres_url, "-c", "1", threads=1, name="doomed")
    h = wa.slow.apply_async(args=("orphan",), timeout=2.0)
    wait_blocked(worker_dir, h.id)
    victim = blocked_pid(worker_dir, h.id)
    assert victim is not None
    row = wa.app.broker.get_workflow(h.id)
    assert row is not None and row.deadline_at is not None

    os.kill(doomed.pid, signal.SIGKILL)
    assert doomed.wait_exit() == -signal.SIGKILL
    wait_for(lambda: not pid_alive(victim), "the dead worker's child to die with it", limit=10)
    deadline = row.deadline_at
    wait_for(lambda: time.time() * 1000 > deadline, "the timeout to pass")
    release(worker_dir, h.id)  # whoever resumed it now could finish the blocking step

    workers.start(postgres_url, "-c", "1", threads=1, name="survivor")
    wait_for(lambda: h.status is Status.CANCELLED, "the stored deadline to cancel it")
    assert wa.noop.delay().get(timeout=PROCESS_LIMIT) is None
    assert counts_of(worker_dir, h.id) == [1, 1, 0]
    assert h.status is Status.CANCELLED
    assert [s.name for s in h.steps()] == ["wa.slow.first"]


@pytest.mark.slow
def test_resume_of_a_failed_workflow_runs_the_failed_step_again_and_nothing_before_it(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1", threads=1)
    fixable = wa.app.get_workflow(workerapp.FIXABLE)
    wid = "fixable-1"
    broken = worker_dir / f"broken-{wid}"
    broken.write_text("", encoding="utf-8")
    h = fixable.apply_async(args=("fix",), workflow_id=wid)
    h.wait(timeout=PROCESS_LIMIT)
    # (Compared by name: the worker's module is imported here under another name.)
    error = h.get(propagate=False)
    assert (type(error).__name__, str(error)) == ("FixableError", f"{wid} is broken")
    assert counts_of(worker_dir, wid, ("s1", "check", "s3")) == [1, 1, 0]

    broken.unlink()
    [again] = wa.app.resume(wid)
    assert again.get(timeout=PROCESS_LIMIT) == ["s1", "check", "s3"]
    assert counts_of(worker_dir, wid, ("s1", "check", "s3")) == [1, 2, 1]
    info = again.info()
    assert (info.status, info.error, info.attempts) == (Status.SUCCESS, None, 1)


@pytest.mark.slow
def test_resume_of_a_parked_workflow_runs_it_to_the_end(
    postgres_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(postgres_url)
    fragile = wa.app.get_workflow(workerapp.FRAGILE)
    doomed = workers.start(postgres_url, "-c", "1", threads=1, name="doomed")
    h = fragile.delay("fragile")
    wait_blocked(worker_dir, h.id)
    victim = blocked_pid(worker_dir, h.id)
    assert victim is not None
    os.kill(doomed.pid, signal.SIGKILL)
    assert doomed.wait_exit() == -signal.SIGKILL
    wait_for(lambda: not pid_alive(victim), "the dead worker's child to die with it", limit=10)

    # max_recovery_attempts=0: the survivor parks it instead of running it again.
    workers.start(postgres_url, "-c", "1", threads=1, name="survivor")
    wait_status(wa.app, h.id, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED)
    assert counts_of(worker_dir, h.id) == [1, 1, 0]

    release(worker_dir, h.id)
    assert h.resume() is h
    assert h.get(timeout=PROCESS_LIMIT) == SLOW_RESULT
    # The step that was running when the worker died runs again; the one before does not.
    assert counts_of(worker_dir, h.id) == [1, 2, 1]
    assert h.info().attempts == 1


@pytest.mark.slow
def test_set_delay_moves_a_delayed_workflow_and_a_worker_runs_it(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1", threads=1)
    h = wa.one_step.apply_async(args=("delayed",), countdown=3600)
    assert h.status is Status.DELAYED

    later = datetime.now(UTC) + timedelta(hours=2)
    h.set_delay(until=later)
    row = wa.app.broker.get_workflow(h.id)
    assert row is not None and row.delay_until == int(later.timestamp() * 1000)
    assert h.status is Status.DELAYED

    wa.app.set_delay(h.id, seconds=0)
    assert h.get(timeout=PROCESS_LIMIT) == "delayed"
    assert step_counts(worker_dir)[(h.id, "touch")] == 1
    with pytest.raises(WorkflowStatusError, match="SUCCESS, not DELAYED"):
        h.set_delay(seconds=1)
