"""Conformance of listing (filters, order, paging, payloads), forks and app versions, on both
dialects."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from taskflow.broker import Broker
from taskflow.broker.base import WorkflowFilter
from taskflow.models import Finish, StepRow
from taskflow.queues import Queue
from taskflow.status import Status

from .queueing import EXECUTOR, NOW, VERSION, claim_all, queued, stored

EVERYTHING = WorkflowFilter()


def ids(
    broker: Broker,
    where: WorkflowFilter = EVERYTHING,
    *,
    limit: int | None = None,
    offset: int = 0,
    newest_first: bool = True,
) -> list[str]:
    """The ids one page lists, in order."""
    return [r.id for r in broker.list_workflows(where, limit, offset, newest_first)]


def finish(broker: Broker, workflow_id: str, status: Status, now: int = NOW + 100) -> None:
    """Claim ``workflow_id`` (alone in its queue) and record ``status`` for it."""
    row = stored(broker, workflow_id)
    claimed = claim_all(broker, (row.queue or "default",), app_version=VERSION)
    assert workflow_id in [r.id for r in claimed]
    output = '"done"' if status is Status.SUCCESS else None
    error = '{"type_name":"builtins.ValueError","message":"bad"}' if output is None else None
    broker.claim(EXECUTOR, [], VERSION, 0, now, [Finish(workflow_id, status, output, error)])
    assert stored(broker, workflow_id).status is status


@pytest.fixture
def shop(broker: Broker) -> Broker:
    """Five workflows, one millisecond apart (a oldest, e newest):

    - a: orders.process on default, user alice, SUCCESS (started on v1);
    - b: mail.send on emails, ERROR (started on v1);
    - c: orders.process on emails, user bob, ENQUEUED, for version v2;
    - d: mail.send on default, user alice, DELAYED;
    - e: orders.process on reports, ENQUEUED.
    """
    broker.enqueue([queued("a", user="alice", created_at=NOW)], NOW)
    finish(broker, "a", Status.SUCCESS)
    broker.enqueue([queued("b", name="mail.send", queue="emails", created_at=NOW + 1)], NOW)
    finish(broker, "b", Status.ERROR)
    broker.enqueue(
        [
            queued("c", queue="emails", user="bob", app_version="v2", created_at=NOW + 2),
            queued(
                "d", name="mail.send", user="alice", created_at=NOW + 3, delay_until=NOW + 10**9
            ),
            queued("e", queue="reports", created_at=NOW + 4),
        ],
        NOW,
    )
    return broker


def test_every_workflow_newest_first_by_default(shop: Broker) -> None:
    assert ids(shop) == ["e", "d", "c", "b", "a"]
    assert ids(shop, newest_first=False) == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (WorkflowFilter(statuses=[Status.ENQUEUED]), ["e", "c"]),
        (WorkflowFilter(statuses=[Status.ERROR, Status.SUCCESS]), ["b", "a"]),
        (WorkflowFilter(statuses=[Status.CANCELLED]), []),
        (WorkflowFilter(name="mail.send"), ["d", "b"]),
        (WorkflowFilter(queue="emails"), ["c", "b"]),
        (WorkflowFilter(user="alice"), ["d", "a"]),
        (WorkflowFilter(app_version="v1"), ["b", "a"]),
        (WorkflowFilter(app_version="v2"), ["c"]),
        (WorkflowFilter(created_from=NOW + 1, created_before=NOW + 3), ["c", "b"]),
        (WorkflowFilter(created_from=NOW + 4), ["e"]),
        (WorkflowFilter(created_before=NOW + 1), ["a"]),
        (WorkflowFilter(name="orders.process", queue="emails", user="bob"), ["c"]),
        (WorkflowFilter(name="orders.process", statuses=[Status.DELAYED]), []),
        (WorkflowFilter(name="nobody"), []),
    ],
)
def test_filters_combine(shop: Broker, where: WorkflowFilter, expected: list[str]) -> None:
    assert ids(shop, where) == expected
    assert ids(shop, where, newest_first=False) == expected[::-1]


def test_pages(shop: Broker) -> None:
    assert ids(shop, limit=2) == ["e", "d"]
    assert ids(shop, limit=2, offset=2) == ["c", "b"]
    assert ids(shop, limit=2, offset=4) == ["a"]
    assert ids(shop, limit=2, offset=5) == []
    assert ids(shop, limit=3, offset=1, newest_first=False) == ["b", "c", "d"]
    assert ids(shop, offset=3) == ["b", "a"]


def test_one_millisecond_keeps_insertion_order(broker: Broker) -> None:
    # One batch, one created_at: the tie-break is the order they were written in.
    broker.enqueue([queued(f"w{i}", created_at=NOW) for i in range(6)], NOW)
    assert ids(broker, newest_first=False) == [f"w{i}" for i in range(6)]
    assert ids(broker) == [f"w{i}" for i in reversed(range(6))]
    assert ids(broker, limit=4, offset=2, newest_first=False) == ["w2", "w3", "w4", "w5"]


def test_rows_carry_everything_but_payloads_unless_asked(shop: Broker) -> None:
    (a,) = shop.list_workflows(WorkflowFilter(user="alice", statuses=[Status.SUCCESS]), 10)
    assert a.id == "a" and a.name == "orders.process" and a.queue == "default"
    assert a.status is Status.SUCCESS and a.app_version == VERSION and a.user == "alice"
    assert a.executor_id == EXECUTOR and a.attempts == 1 and a.created_at == NOW
    assert a.finished_at == NOW + 100
    assert a.inputs == "" and a.output is None
    (b,) = shop.list_workflows(WorkflowFilter(statuses=[Status.ERROR]), 10)
    assert b.error is not None and "bad" in b.error  # errors always come: they are small
    (loaded,) = shop.list_workflows(
        WorkflowFilter(user="alice", statuses=[Status.SUCCESS]),
        10,
        load_inputs=True,
        load_outputs=True,
    )
    assert loaded.inputs == '{"args":[],"kwargs":{}}' and loaded.output == '"done"'
    (only_output,) = shop.list_workflows(
        WorkflowFilter(statuses=[Status.SUCCESS]), 10, load_outputs=True
    )
    assert only_output.inputs == "" and only_output.output == '"done"'


# -- fork ----------------------------------------------------------------------------------------
def step(
    broker: Broker,
    workflow_id: str,
    step_id: int,
    at: int,
    *,
    name: str = "charge",
    error: str | None = None,
    child: str | None = None,
) -> None:
    """Record a step that ran from ``at`` to ``at + 1``."""
    row = StepRow(
        step_id=step_id,
        name=name,
        output=None if error else f'"out-{step_id}"',
        error=error,
        child_workflow_id=child,
        started_at=at,
        finished_at=at + 1,
    )
    assert broker.record_step(workflow_id, row).inserted


def history(broker: Broker, workflow_id: str) -> list[tuple[int, str, str | None, str | None]]:
    return [(s.step_id, s.name, s.output, s.error) for s in broker.load_steps(workflow_id)]


def stream(broker: Broker, workflow_id: str, key: str) -> list[str | None]:
    return [v for _, v in broker.read_stream(workflow_id, key, -1, 100).rows]


@pytest.fixture
def original(broker: Broker) -> Broker:
    """Workflow ``o`` (user carol, priority 7, timeout 60 s, on emails, started on v1) with
    steps 0-3 recorded at NOW+10, +20, +30, +40, its event and stream writes in between, and
    ERROR as its outcome."""
    broker.enqueue(
        [
            queued(
                "o",
                queue="emails",
                user="carol",
                priority=7,
                timeout_ms=60_000,
                inputs='{"args":[1],"kwargs":{"x":2}}',
            )
        ],
        NOW,
    )
    claim_all(broker, ("emails",))
    step(broker, "o", 0, NOW + 10, child="o-child")
    broker.set_event("o", "stage", '"one"', NOW + 15)
    broker.write_stream("o", "log", '"a"', NOW + 15)
    step(broker, "o", 1, NOW + 20)
    broker.set_event("o", "late", '"two"', NOW + 25)
    broker.write_stream("o", "log", '"b"', NOW + 25)
    step(broker, "o", 2, NOW + 30, error='{"type_name":"builtins.ValueError","message":"x"}')
    step(broker, "o", 3, NOW + 40)
    broker.claim(
        EXECUTOR, [], VERSION, 0, NOW + 50, [Finish("o", Status.ERROR, None, '{"message":"x"}')]
    )
    return broker


def test_fork_copies_the_steps_before_the_start_step(original: Broker) -> None:
    result = original.fork_workflow("o", "f", 2, NOW + 100, queue="emails")
    assert result is not None and result.created and result.id == "f"
    forked = stored(original, "f")
    assert forked.status is Status.ENQUEUED and forked.name == "orders.process"
    assert forked.inputs == '{"args":[1],"kwargs":{"x":2}}'
    assert (forked.user, forked.priority, forked.timeout_ms) == ("carol", 7, 60_000)
    assert forked.queue == "emails" and forked.app_version == VERSION
    assert forked.created_at == NOW + 100 and forked.attempts == 0
    # Holding copied steps, it counts as started: its claim loads that history.
    assert forked.started_at == NOW + 100
    assert forked.parent_id is None and forked.executor_id is None
    assert forked.output is None and forked.error is None and forked.deadline_at is None
    assert history(original, "f") == history(original, "o")[:2]
    assert [s.child_workflow_id for s in original.load_steps("f")] == ["o-child", None]
    # Written before step 2 started (NOW+30): both events and both stream values.
    assert original.get_event("f", "stage")[0] == '"one"'
    assert original.get_event("f", "late")[0] == '"two"'
    assert stream(original, "f", "log") == ['"a"', '"b"']
    # The original is untouched.
    assert stored(original, "o").status is Status.ERROR
    assert len(original.load_steps("o")) == 4


def test_fork_leaves_out_what_the_rerun_steps_write(original: Broker) -> None:
    assert original.fork_workflow("o", "f1", 1, NOW + 100, queue="emails") is not None
    assert history(original, "f1") == history(original, "o")[:1]
    assert original.get_event("f1", "stage")[0] == '"one"'
    assert original.get_event("f1", "late") == (None, Status.ENQUEUED)
    assert stream(original, "f1", "log") == ['"a"']
    # From the start: nothing is copied.
    assert original.fork_workflow("o", "f0", 0, NOW + 100, queue="emails") is not None
    assert history(original, "f0") == []
    assert stored(original, "f0").started_at is None  # a fresh start
    assert original.get_event("f0", "stage") == (None, Status.ENQUEUED)
    assert stream(original, "f0", "log") == []
    # Past the last step: everything is.
    assert original.fork_workflow("o", "f9", 9, NOW + 100, queue="emails") is not None
    assert history(original, "f9") == history(original, "o")
    assert stream(original, "f9", "log") == ['"a"', '"b"']


def test_fork_onto_another_version_queue_and_partition(original: Broker) -> None:
    result = original.fork_workflow(
        "o", "f2", 1, NOW + 100, queue="reports", app_version="v2", partition_key="k"
    )
    assert result is not None and result.created
    forked = stored(original, "f2")
    assert (forked.queue, forked.app_version, forked.partition_key) == ("reports", "v2", "k")
    # Only a worker of v2 may run it; it resumes after the copied step.
    assert claim_all(original, ("reports",), app_version="v1") == []
    (claimed,) = claim_all(original, ("reports",), app_version="v2")
    assert claimed.id == "f2" and claimed.status is Status.PENDING
    assert not claimed.fresh  # the worker replays the copied step


def test_fork_of_an_unknown_workflow_or_onto_a_taken_id(original: Broker) -> None:
    assert original.fork_workflow("nope", "f3", 0, NOW, queue="default") is None
    assert original.get_workflow("f3") is None
    first = original.fork_workflow("o", "f3", 2, NOW + 100, queue="emails")
    assert first is not None and first.created
    again = original.fork_workflow("o", "f3", 0, NOW + 200, queue="default")
    assert again is not None and not again.created and again.conflict == "id"
    # Nothing was rewritten: still the first fork.
    assert stored(original, "f3").created_at == NOW + 100 and len(history(original, "f3")) == 2


def test_fork_boundary_within_one_millisecond(broker: Broker) -> None:
    """Step 1 is a set_event and step 2 a write_stream of the same millisecond as step 3's
    start: forking from 3 keeps what steps 1 and 2 wrote, forking from 2 only step 1's."""
    broker.enqueue([queued("m")], NOW)
    claim_all(broker)
    step(broker, "m", 0, NOW + 1)
    broker.set_event("m", "k", '"v"', NOW + 5, step=(1, "taskflow.set_event"))
    broker.write_stream("m", "s", '"x"', NOW + 5, step=(2, "taskflow.write_stream"))
    step(broker, "m", 3, NOW + 5)
    broker.write_stream("m", "s", '"y"', NOW + 5)  # written by step 3's body, same ms
    assert broker.fork_workflow("m", "m3", 3, NOW + 10, queue="default") is not None
    assert broker.get_event("m3", "k")[0] == '"v"'
    assert stream(broker, "m3", "s") == ['"x"']
    assert broker.fork_workflow("m", "m2", 2, NOW + 10, queue="default") is not None
    assert broker.get_event("m2", "k")[0] == '"v"'
    assert stream(broker, "m2", "s") == []
    assert broker.fork_workflow("m", "m1", 1, NOW + 10, queue="default") is not None
    assert broker.get_event("m1", "k") == (None, Status.ENQUEUED)


# -- versions ------------------------------------------------------------------------------------
def versions(broker: Broker) -> list[tuple[str, int, int]]:
    return [(v.version, v.created_at, v.version_at) for v in broker.list_versions()]


def test_versions_latest_first_and_set_latest(broker: Broker) -> None:
    assert broker.list_versions() == []
    spec = Queue("emails", concurrency=1)
    broker.declare_queues([spec], "v1", NOW)
    broker.declare_queues([Queue("emails", concurrency=5)], "v2", NOW + 10)
    broker.declare_queues([spec], "v1", NOW + 20)  # v1 again: not newer
    assert versions(broker) == [("v2", NOW + 10, NOW + 10), ("v1", NOW, NOW)]
    assert broker.queue_specs()["emails"].app_version == "v2"
    assert broker.set_latest_version("v1", NOW + 30)
    assert versions(broker) == [("v1", NOW, NOW + 30), ("v2", NOW + 10, NOW + 10)]
    # v1's next declaration now wins over v2's.
    broker.declare_queues([spec], "v1", NOW + 40)
    record = broker.queue_specs()["emails"]
    assert record.app_version == "v1" and record.queue.concurrency == 1
    assert not broker.set_latest_version("v9", NOW + 50)
    assert [v for v, _, _ in versions(broker)] == ["v1", "v2"]


def test_set_latest_moves_past_a_clock_behind(broker: Broker) -> None:
    broker.declare_queues([], "v1", NOW)
    broker.declare_queues([], "v2", NOW + 1_000)
    assert broker.set_latest_version("v1", NOW + 5)  # this clock is behind v2's
    latest: Sequence[tuple[str, int, int]] = versions(broker)
    assert latest[0] == ("v1", NOW, NOW + 1_001)
