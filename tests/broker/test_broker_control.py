"""Conformance of the operator actions (cancel, resume, set_delay) and of the durable timeout
in the tick, on both dialects."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from taskflow.broker import Broker
from taskflow.broker.postgres import PostgresBroker
from taskflow.errors import (
    TaskflowError,
    WorkflowCancelledError,
    WorkflowDeduplicatedError,
    WorkflowError,
)
from taskflow.models import ControlRef, Finish, NewWorkflow, StepRow
from taskflow.serialization import encode_error
from taskflow.status import Status

from .queueing import EXECUTOR, NOW, VERSION, claim_all, queued, stored

LATER = NOW + 1_000
WAITING = (Status.ENQUEUED, Status.DELAYED, Status.PENDING)
FINISHED = (Status.SUCCESS, Status.ERROR, Status.CANCELLED, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED)
RESUMABLE = (Status.CANCELLED, Status.ERROR, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED)


class StepFailed(TaskflowError):
    """A step's error, importable, so a workflow re-raising it records the same type."""


def running(
    broker: Broker,
    workflow_id: str,
    *,
    parent_id: str | None = None,
    timeout_ms: int | None = None,
    queue: str | None = None,
    started_at: int = NOW,
) -> None:
    """A PENDING workflow owned by :data:`EXECUTOR` (as a direct run starts it)."""
    new = NewWorkflow(
        id=workflow_id,
        name="orders.process",
        status=Status.PENDING,
        inputs='{"args":[],"kwargs":{}}',
        executor_id=EXECUTOR,
        app_version=VERSION,
        parent_id=parent_id,
        queue=queue,
        created_at=started_at,
        started_at=started_at,
        timeout_ms=timeout_ms,
    )
    assert broker.start_workflow(new, started_at).created


def in_status(broker: Broker, workflow_id: str, status: Status, **kw: Any) -> None:
    """A workflow in ``status``, however it gets there."""
    if status is Status.ENQUEUED:
        broker.enqueue([queued(workflow_id, **kw)], NOW)
    elif status is Status.DELAYED:
        broker.enqueue([queued(workflow_id, delay_until=NOW + 60_000, **kw)], NOW)
    else:
        running(broker, workflow_id, **kw)
        if status is Status.SUCCESS:
            assert broker.finish_workflow(workflow_id, status, '"done"', None, NOW)
        elif status is Status.ERROR:
            error = encode_error(StepFailed("boom"))
            assert broker.finish_workflow(workflow_id, status, None, error, NOW)
        elif status is not Status.PENDING:
            assert broker.set_status(workflow_id, status, Status.PENDING, NOW)
    assert stored(broker, workflow_id).status is status


def failed_step(step_id: int, exc: BaseException) -> StepRow:
    return StepRow(step_id=step_id, name=f"s{step_id}", error=encode_error(exc))


def ok_step(step_id: int) -> StepRow:
    return StepRow(step_id=step_id, name=f"s{step_id}", output='"ok"')


class Counting:
    """A connection that records the statements run through it."""

    def __init__(self, conn: Any, seen: list[str]) -> None:
        self._conn = conn
        self._seen = seen

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self._seen.append(str(query))
        return self._conn.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def statements(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Start counting the statements the broker sends (BEGIN/COMMIT of SQLite included);
    returns a function giving those seen since."""
    seen: list[str] = []
    original: Any = broker._conn  # type: ignore[attr-defined]
    if isinstance(broker, PostgresBroker):

        @contextmanager
        def pooled() -> Iterator[Counting]:
            with original() as conn:
                yield Counting(conn, seen)

        monkeypatch.setattr(broker, "_conn", pooled)
    else:
        monkeypatch.setattr(broker, "_conn", lambda: Counting(original(), seen))

    def since() -> list[str]:
        out = list(seen)
        seen.clear()
        return out

    return since


def is_postgres(broker: Broker) -> bool:
    return isinstance(broker, PostgresBroker)


# -- cancel --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", WAITING)
def test_cancel_takes_waiting_and_running_workflows(broker: Broker, status: Status) -> None:
    in_status(broker, "wf", status)
    assert broker.cancel(["wf"], LATER) == ["wf"]
    row = stored(broker, "wf")
    assert (row.status, row.finished_at, row.output, row.error) == (
        Status.CANCELLED,
        LATER,
        None,
        None,
    )
    # Who was running it stays on record.
    assert row.executor_id == (EXECUTOR if status is Status.PENDING else None)


@pytest.mark.parametrize("status", FINISHED)
def test_cancel_leaves_finished_workflows_as_they_are(broker: Broker, status: Status) -> None:
    in_status(broker, "wf", status)
    before = stored(broker, "wf")
    assert broker.cancel(["wf"], LATER) == []
    assert stored(broker, "wf") == before


def test_cancel_of_unknown_ids_or_nothing_changes_nothing(broker: Broker) -> None:
    in_status(broker, "other", Status.PENDING)
    assert broker.cancel(["missing"], LATER) == []
    assert broker.cancel([], LATER) == []
    assert stored(broker, "other").status is Status.PENDING


def test_cancel_reaches_every_unfinished_descendant_and_nothing_else(broker: Broker) -> None:
    in_status(broker, "root", Status.PENDING)
    in_status(broker, "child-running", Status.PENDING, parent_id="root")
    in_status(broker, "grandchild-waiting", Status.ENQUEUED, parent_id="child-running")
    in_status(broker, "child-delayed", Status.DELAYED, parent_id="root")
    # A child that returned may have left a child of its own running.
    in_status(broker, "child-done", Status.SUCCESS, parent_id="root")
    in_status(broker, "grandchild-orphan", Status.PENDING, parent_id="child-done")
    in_status(broker, "great-grandchild", Status.DELAYED, parent_id="grandchild-orphan")
    in_status(broker, "child-failed", Status.ERROR, parent_id="root")
    in_status(broker, "unrelated", Status.PENDING)
    in_status(broker, "unrelated-child", Status.ENQUEUED, parent_id="unrelated")

    cancelled = broker.cancel(["root"], LATER)
    assert sorted(cancelled) == [
        "child-delayed",
        "child-running",
        "grandchild-orphan",
        "grandchild-waiting",
        "great-grandchild",
        "root",
    ]
    for wid in cancelled:
        assert stored(broker, wid).status is Status.CANCELLED, wid
    assert stored(broker, "child-done").status is Status.SUCCESS
    assert stored(broker, "child-failed").status is Status.ERROR
    assert stored(broker, "unrelated").status is Status.PENDING
    assert stored(broker, "unrelated-child").status is Status.ENQUEUED


def test_cancel_of_a_finished_parent_still_reaches_its_running_children(
    broker: Broker,
) -> None:
    in_status(broker, "parent", Status.SUCCESS)
    in_status(broker, "fire-and-forget", Status.ENQUEUED, parent_id="parent")
    assert broker.cancel(["parent"], LATER) == ["fire-and-forget"]
    assert stored(broker, "parent").status is Status.SUCCESS


def test_cancel_of_many_ids_and_shared_descendants_in_one_statement(
    broker: Broker, statements: Callable[[], list[str]]
) -> None:
    in_status(broker, "a", Status.PENDING)
    in_status(broker, "b", Status.ENQUEUED)
    in_status(broker, "a1", Status.PENDING, parent_id="a")
    in_status(broker, "a11", Status.ENQUEUED, parent_id="a1")
    statements()
    # a1 is given and is also a descendant of a: cancelled (and reported) once.
    assert sorted(broker.cancel(["a", "a1", "b", "missing"], LATER)) == ["a", "a1", "a11", "b"]
    assert len(statements()) == 1


def test_cancel_clears_the_error_a_retry_left(broker: Broker) -> None:
    broker.enqueue([queued("wf")], NOW)
    claim_all(broker)
    error = encode_error(StepFailed("try 1"))
    assert broker.retry_later("wf", EXECUTOR, NOW + 60_000, error, NOW)
    assert stored(broker, "wf").error == error
    assert broker.cancel(["wf"], LATER) == ["wf"]
    # get() must raise WorkflowCancelledError, not the retry's last error.
    assert stored(broker, "wf").error is None


def test_a_cancelled_workflow_is_never_claimed_nor_finished_nor_promoted(
    broker: Broker,
) -> None:
    broker.enqueue([queued("waiting"), queued("later", delay_until=NOW + 10)], NOW)
    broker.enqueue([queued("running")], NOW)
    claimed = claim_all(broker, limit=1)
    assert {r.id for r in claimed} == {"waiting", "running"}
    broker.enqueue([queued("never")], NOW)
    assert sorted(broker.cancel(["running", "never", "later"], LATER)) == [
        "later",
        "never",
        "running",
    ]
    assert claim_all(broker, now=LATER) == []
    assert broker.tick(LATER).promoted == 0
    # The worker's final write and a direct run's are both guarded by PENDING.
    broker.claim(EXECUTOR, ["default"], VERSION, 0, LATER, [Finish("running", Status.SUCCESS)])
    assert not broker.finish_workflow("running", Status.SUCCESS, '"x"', None, LATER)
    assert stored(broker, "running").status is Status.CANCELLED
    # The next checkpoint tells the executor to stop; the step's outcome is kept.
    write = broker.record_step("running", ok_step(0))
    assert (write.inserted, write.status) == (True, Status.CANCELLED)


# -- resume --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", RESUMABLE)
def test_resume_requeues_with_a_fresh_run_budget(broker: Broker, status: Status) -> None:
    broker.enqueue([queued("wf", queue="emails", timeout_ms=5_000)], NOW)
    (row,) = claim_all(broker, ("emails",))
    assert (row.attempts, row.deadline_at) == (1, NOW + 5_000)
    if status is Status.ERROR:
        assert broker.finish_workflow("wf", status, None, encode_error(StepFailed("x")), NOW)
    elif status is Status.CANCELLED:
        assert broker.cancel(["wf"], NOW) == ["wf"]
    else:
        assert broker.set_status("wf", status, Status.PENDING, NOW)

    refs = broker.resume(["wf"], LATER)
    assert refs == [ControlRef(id="wf", name="orders.process", status=status, changed=True)]
    row = stored(broker, "wf")
    assert (row.status, row.queue, row.executor_id) == (Status.ENQUEUED, "emails", None)
    assert (row.output, row.error, row.finished_at) == (None, None, None)
    assert (row.attempts, row.retries, row.deadline_at, row.timeout_ms) == (0, 0, None, 5_000)
    assert row.started_at == NOW  # kept: the next claim loads the recorded steps

    (again,) = claim_all(broker, ("emails",), now=LATER + 1)
    assert again.attempts == 1
    assert again.deadline_at == LATER + 1 + 5_000  # the timeout starts over
    assert again.fresh is False


def test_resume_of_a_direct_run_uses_the_default_queue_or_the_one_given(
    broker: Broker,
) -> None:
    in_status(broker, "direct", Status.ERROR)
    in_status(broker, "moved", Status.CANCELLED, queue="emails")
    assert stored(broker, "direct").queue is None
    broker.resume(["direct"], LATER)
    broker.resume(["moved"], LATER, queue="reports")
    assert stored(broker, "direct").queue == "default"
    assert stored(broker, "moved").queue == "reports"
    assert [r.id for r in claim_all(broker, ("default", "reports"), now=LATER)] == [
        "direct",
        "moved",
    ]


def test_resume_to_another_queue_drops_the_partition_key(broker: Broker) -> None:
    broker.enqueue(
        [queued("stay", queue="p", partition_key="k"), queued("go", queue="p", partition_key="k")],
        NOW,
    )
    broker.cancel(["stay", "go"], NOW)
    broker.resume(["stay"], LATER)
    broker.resume(["go"], LATER, queue="flat")
    assert stored(broker, "stay").partition_key == "k"
    assert stored(broker, "go").partition_key is None


def test_resume_of_a_never_started_expired_workflow_clears_its_expiry(broker: Broker) -> None:
    broker.enqueue([queued("wf", expires_at=NOW + 10)], NOW)
    assert broker.tick(NOW + 10).expired == 1
    broker.resume(["wf"], LATER)
    assert stored(broker, "wf").expires_at is None
    assert broker.tick(LATER).expired == 0
    assert [r.id for r in claim_all(broker, now=LATER)] == ["wf"]


def test_resume_waits_out_a_delay_that_has_not_passed(broker: Broker) -> None:
    broker.enqueue([queued("wf", delay_until=NOW + 60_000)], NOW)
    broker.cancel(["wf"], NOW)
    broker.resume(["wf"], LATER)
    assert stored(broker, "wf").status is Status.DELAYED
    assert broker.tick(NOW + 60_000).promoted == 1


@pytest.mark.parametrize(
    "status", [Status.SUCCESS, Status.ENQUEUED, Status.DELAYED, Status.PENDING]
)
def test_resume_is_all_or_nothing(broker: Broker, status: Status) -> None:
    in_status(broker, "ok", Status.ERROR)
    in_status(broker, "no", status)
    before = stored(broker, "no")
    refs = broker.resume(["ok", "no"], LATER)
    assert sorted(refs, key=lambda r: r.id) == [
        ControlRef(id="no", name="orders.process", status=status, changed=False),
        ControlRef(id="ok", name="orders.process", status=Status.ERROR, changed=False),
    ]
    assert stored(broker, "ok").status is Status.ERROR
    assert stored(broker, "no") == before


def test_resume_with_an_unknown_id_changes_nothing(broker: Broker) -> None:
    in_status(broker, "ok", Status.CANCELLED)
    refs = broker.resume(["ok", "missing"], LATER)
    assert refs == [
        ControlRef(id="ok", name="orders.process", status=Status.CANCELLED, changed=False)
    ]
    assert stored(broker, "ok").status is Status.CANCELLED
    assert broker.resume([], LATER) == []


def ended_by(broker: Broker, workflow_id: str, steps: list[StepRow], error: str) -> None:
    running(broker, workflow_id)
    for s in steps:
        broker.record_step(workflow_id, s)
    assert broker.finish_workflow(workflow_id, Status.ERROR, None, error, NOW)


def step_ids(broker: Broker, workflow_id: str) -> list[int]:
    return [s.step_id for s in broker.load_steps(workflow_id)]


def test_resume_forgets_the_last_step_error_that_ended_the_workflow(broker: Broker) -> None:
    boom = StepFailed("card declined")
    # The workflow let the step's error propagate: the same type and message.
    ended_by(broker, "same", [ok_step(0), failed_step(1, boom)], encode_error(boom))
    # The workflow caught it and failed in its own way: the step's outcome stands.
    ended_by(broker, "caught", [ok_step(0), failed_step(1, boom)], encode_error(ValueError("no")))
    # An earlier error that the workflow handled stays recorded.
    ended_by(broker, "handled", [failed_step(0, boom), ok_step(1)], encode_error(boom))
    # Where the step's error type could not be imported, the workflow recorded the
    # WorkflowError that stood for it.
    foreign = '{"type_name":"elsewhere.Gone","message":"lost","traceback":"","args":["lost"]}'
    stand_in = encode_error(WorkflowError("elsewhere.Gone", "lost"))
    ended_by(
        broker,
        "foreign",
        [ok_step(0), StepRow(step_id=1, name="s1", error=foreign)],
        stand_in,
    )
    broker.resume(["same", "caught", "handled", "foreign"], LATER)
    assert step_ids(broker, "same") == [0]
    assert step_ids(broker, "caught") == [0, 1]
    assert step_ids(broker, "handled") == [0, 1]
    assert step_ids(broker, "foreign") == [0]


def test_resume_of_a_cancelled_parent_forgets_the_child_cancelled_with_it(
    broker: Broker,
) -> None:
    cancelled_child = failed_step(1, WorkflowCancelledError("workflow 'p-1' was cancelled"))
    for wid, last in (("parent", cancelled_child), ("other", failed_step(1, StepFailed("x")))):
        running(broker, wid)
        broker.record_step(wid, ok_step(0))
        broker.record_step(wid, last)
    broker.cancel(["parent", "other"], NOW)
    running(broker, "parked")
    broker.record_step("parked", failed_step(0, StepFailed("x")))
    broker.set_status("parked", Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED, Status.PENDING, NOW)

    broker.resume(["parent", "other", "parked"], LATER)
    assert step_ids(broker, "parent") == [0]
    # A step's own error, recorded as the cancel landed: replayed, as it would have been.
    assert step_ids(broker, "other") == [0, 1]
    assert step_ids(broker, "parked") == [0]


def test_a_refused_resume_forgets_nothing(broker: Broker) -> None:
    boom = StepFailed("boom")
    ended_by(broker, "failed", [failed_step(0, boom)], encode_error(boom))
    in_status(broker, "done", Status.SUCCESS)
    broker.resume(["failed", "done"], LATER)
    assert step_ids(broker, "failed") == [0]


def test_resume_is_one_statement_on_postgres(
    broker: Broker, statements: Callable[[], list[str]]
) -> None:
    for i in range(3):
        in_status(broker, f"wf{i}", RESUMABLE[i])
    statements()
    assert all(r.changed for r in broker.resume(["wf0", "wf1", "wf2"], LATER))
    if is_postgres(broker):
        assert len(statements()) == 1


def test_resume_refuses_a_dedup_key_held_meanwhile(broker: Broker) -> None:
    broker.enqueue([queued("first", dedup_id="cart-7")], NOW)
    broker.cancel(["first"], NOW)
    broker.enqueue([queued("second", dedup_id="cart-7")], NOW)
    with pytest.raises(WorkflowDeduplicatedError, match="first"):
        broker.resume(["first"], LATER)
    assert stored(broker, "first").status is Status.CANCELLED


# -- set_delay -----------------------------------------------------------------------------


def test_set_delay_moves_a_delayed_workflow(broker: Broker) -> None:
    broker.enqueue([queued("wf", delay_until=NOW + 60_000)], NOW)
    ref = broker.set_delay("wf", NOW + 120_000, LATER)
    assert ref == ControlRef(id="wf", name="orders.process", status=Status.DELAYED, changed=True)
    row = stored(broker, "wf")
    assert (row.status, row.delay_until) == (Status.DELAYED, NOW + 120_000)
    assert broker.tick(NOW + 60_000).next_due == NOW + 120_000

    broker.set_delay("wf", NOW + 2_000, LATER)
    assert broker.tick(NOW + 2_000).promoted == 1


@pytest.mark.parametrize("due", [LATER, LATER - 500])
def test_set_delay_to_now_or_the_past_makes_it_runnable_at_once(broker: Broker, due: int) -> None:
    broker.enqueue([queued("wf", delay_until=NOW + 60_000)], NOW)
    assert broker.set_delay("wf", due, LATER) is not None
    row = stored(broker, "wf")
    assert (row.status, row.delay_until) == (Status.ENQUEUED, due)
    assert [r.id for r in claim_all(broker, now=LATER)] == ["wf"]


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.DELAYED])
def test_set_delay_refuses_a_workflow_that_is_not_delayed(broker: Broker, status: Status) -> None:
    in_status(broker, "wf", status)
    before = stored(broker, "wf")
    ref = broker.set_delay("wf", NOW + 5_000, LATER)
    assert ref == ControlRef(id="wf", name="orders.process", status=status, changed=False)
    assert stored(broker, "wf") == before
    assert broker.set_delay("missing", NOW, LATER) is None


def test_set_delay_is_one_statement_on_postgres(
    broker: Broker, statements: Callable[[], list[str]]
) -> None:
    broker.enqueue([queued("wf", delay_until=NOW + 60_000)], NOW)
    statements()
    broker.set_delay("wf", NOW, LATER)
    if is_postgres(broker):
        assert len(statements()) == 1


def test_postgres_resume_and_set_delay_wake_the_queue(broker: Broker, database_url: str) -> None:
    if not isinstance(broker, PostgresBroker):
        pytest.skip("LISTEN/NOTIFY is Postgres only; SQLite listeners see any commit")
    broker.enqueue([queued("later", queue="q1", delay_until=NOW + 60_000)], NOW)
    in_status(broker, "failed", Status.ERROR, queue="q2")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'LISTEN "{broker.channel}"')
        broker.set_delay("later", NOW, LATER)
        broker.resume(["failed"], LATER)
        got = [n.payload for n in conn.notifies(timeout=10, stop_after=2)]
        assert sorted(got) == ["q1", "q2"]


# -- the durable timeout in the tick ----------------------------------------------------------


def test_tick_cancels_running_workflows_past_their_deadline_with_their_children(
    broker: Broker,
) -> None:
    running(broker, "late", timeout_ms=1_000)  # deadline NOW + 1_000
    running(broker, "late-child", parent_id="late")
    broker.enqueue(
        [
            queued("late-waiting-child", parent_id="late"),
            # Due at the same tick: cancelled with its parent, not promoted.
            queued("late-delayed-child", parent_id="late", delay_until=NOW + 500),
            queued("late-grandchild", parent_id="late-child"),
        ],
        NOW,
    )
    running(broker, "in-time", timeout_ms=5_000)
    running(broker, "in-time-child", parent_id="in-time")
    running(broker, "no-timeout")
    in_status(broker, "done-late", Status.SUCCESS)

    assert broker.tick(NOW + 999).timed_out == 0
    tick = broker.tick(NOW + 1_000)
    assert (tick.timed_out, tick.promoted, tick.expired) == (5, 0, 0)
    for wid in (
        "late",
        "late-child",
        "late-waiting-child",
        "late-delayed-child",
        "late-grandchild",
    ):
        row = stored(broker, wid)
        assert (row.status, row.finished_at) == (Status.CANCELLED, NOW + 1_000), wid
    for wid in ("in-time", "in-time-child", "no-timeout"):
        assert stored(broker, wid).status is Status.PENDING, wid
    assert stored(broker, "done-late").status is Status.SUCCESS
    assert broker.tick(NOW + 1_001).timed_out == 0


def test_tick_times_out_claimed_work_from_its_first_start(broker: Broker) -> None:
    broker.enqueue([queued("wf", timeout_ms=2_000)], NOW)
    # Waiting does not count: the deadline is set by the first claim.
    assert broker.tick(NOW + 10_000).timed_out == 0
    claim_all(broker, now=NOW + 10_000)
    assert broker.tick(NOW + 11_999).timed_out == 0
    assert broker.tick(NOW + 12_000).timed_out == 1
    assert stored(broker, "wf").status is Status.CANCELLED


def test_tick_still_promotes_and_expires_beside_a_timeout(
    broker: Broker, statements: Callable[[], list[str]]
) -> None:
    running(broker, "late", timeout_ms=10)
    broker.enqueue(
        [queued("due", delay_until=NOW + 5), queued("expiring", expires_at=NOW + 5)], NOW
    )
    statements()
    tick = broker.tick(NOW + 10)
    assert (tick.timed_out, tick.promoted, tick.expired) == (1, 1, 1)
    if is_postgres(broker):
        assert len(statements()) == 1
