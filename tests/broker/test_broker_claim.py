"""Conformance of claim (with finishes), release and retry_later, on both dialects."""

from __future__ import annotations

import msgspec

from taskflow.broker import Broker
from taskflow.models import Finish, NewWorkflow
from taskflow.status import Status

from .queueing import EXECUTOR, NOW, VERSION, claim_all, queued, stored


def test_claim_honours_the_limit(broker: Broker) -> None:
    broker.enqueue([queued(f"wf-{i}") for i in range(5)], NOW)
    assert [r.id for r in broker.claim(EXECUTOR, ["default"], VERSION, 2, NOW)] == [
        "wf-0",
        "wf-1",
    ]
    assert len(broker.claim(EXECUTOR, ["default"], VERSION, 10, NOW)) == 3
    assert broker.claim(EXECUTOR, ["default"], VERSION, 10, NOW) == []


def test_claim_with_limit_zero_claims_nothing(broker: Broker) -> None:
    broker.enqueue([queued("wf-1")], NOW)
    assert broker.claim(EXECUTOR, ["default"], VERSION, 0, NOW) == []
    assert stored(broker, "wf-1").status is Status.ENQUEUED


def test_claim_order_is_no_priority_first_then_lowest_then_fifo(broker: Broker) -> None:
    news = [
        queued("p5", priority=5, created_at=NOW),
        queued("none-late", created_at=NOW + 2),
        queued("p1-late", priority=1, created_at=NOW + 3),
        queued("p2", priority=2, created_at=NOW),
        queued("p1-early", priority=1, created_at=NOW + 1),
        queued("none-early", created_at=NOW + 1),
        queued("p-max", priority=2_147_483_647, created_at=NOW),
    ]
    broker.enqueue(news, NOW + 5)
    claimed = broker.claim(EXECUTOR, ["default"], VERSION, 100, NOW + 5)
    assert [r.id for r in claimed] == [
        "none-early",
        "none-late",
        "p1-early",
        "p1-late",
        "p2",
        "p5",
        "p-max",
    ]
    assert [r.priority for r in claimed] == [None, None, 1, 1, 2, 5, 2_147_483_647]


def test_fifo_within_one_priority_for_a_same_millisecond_batch(broker: Broker) -> None:
    ids = [f"wf-{i}" for i in range(300)]
    # Ids in an order unrelated to their sort order, all created in the same millisecond.
    shuffled = ids[::-1]
    broker.enqueue([queued(i) for i in shuffled], NOW)
    broker.enqueue([queued(f"p{i}", priority=1) for i in range(10)], NOW)
    got: list[str] = []
    while batch := broker.claim(EXECUTOR, ["default"], VERSION, 7, NOW):
        got += [r.id for r in batch]
    assert got == shuffled + [f"p{i}" for i in range(10)]


def test_claim_only_from_the_given_queues(broker: Broker) -> None:
    broker.enqueue([queued("a", queue="q1"), queued("b", queue="q2"), queued("c", queue="q3")], NOW)
    assert [r.id for r in claim_all(broker, ("q1", "q3"))] == ["a", "c"]
    assert [r.id for r in claim_all(broker, ("nope",))] == []
    assert [r.id for r in claim_all(broker, ("q2",))] == ["b"]


def test_claim_honours_app_versions(broker: Broker) -> None:
    broker.enqueue(
        [
            queued("any", app_version=None),
            queued("pinned-v1", app_version="v1"),
            queued("pinned-v2", app_version="v2"),
        ],
        NOW,
    )
    v1 = claim_all(broker, app_version="v1")
    assert [r.id for r in v1] == ["any", "pinned-v1"]
    assert [r.app_version for r in v1] == ["v1", "v1"]  # an unpinned row is pinned by its claim
    assert stored(broker, "any").app_version == "v1"
    assert [r.id for r in claim_all(broker, app_version="v3")] == []
    assert [r.id for r in claim_all(broker, app_version="v2", executor_id="b")] == ["pinned-v2"]


def test_claimed_rows_are_running_attempts_start_and_deadline(broker: Broker) -> None:
    broker.enqueue([queued("timed", timeout_ms=5_000), queued("untimed")], NOW)
    claimed = broker.claim(EXECUTOR, ["default"], VERSION, 10, NOW + 100)
    assert [r.id for r in claimed] == ["timed", "untimed"]
    timed, untimed = claimed
    assert timed.status is Status.PENDING
    assert (timed.executor_id, timed.attempts) == (EXECUTOR, 1)
    assert (timed.started_at, timed.deadline_at) == (NOW + 100, NOW + 5_100)
    assert (untimed.started_at, untimed.deadline_at) == (NOW + 100, None)
    # "fresh" (first claim, no history to load) is reported by the claim, never stored, and
    # only where the dialect can tell (Postgres); False is always safe.
    assert stored(broker, "timed") == msgspec.structs.replace(timed, fresh=False)
    if broker.dialect == "postgresql":
        assert timed.fresh and untimed.fresh

    # A released workflow claimed again keeps its first start and its deadline.
    assert broker.release(EXECUTOR, ["timed"], NOW + 200, count_attempt=True) == ["timed"]
    again = broker.claim("exec-b", ["default"], VERSION, 10, NOW + 300)
    assert [r.id for r in again] == ["timed"]
    assert (again[0].executor_id, again[0].attempts) == ("exec-b", 2)
    assert (again[0].started_at, again[0].deadline_at) == (NOW + 100, NOW + 5_100)
    assert not again[0].fresh  # it may have recorded steps: its history must be loaded


def test_claimed_row_is_never_claimed_again(broker: Broker) -> None:
    broker.enqueue([queued("wf-1")], NOW)
    assert len(broker.claim(EXECUTOR, ["default"], VERSION, 10, NOW)) == 1
    assert broker.claim("exec-b", ["default"], VERSION, 10, NOW) == []


# -- finishes ----------------------------------------------------------------------------


def test_finishes_are_written_for_the_owner_only(broker: Broker) -> None:
    broker.enqueue([queued("ok"), queued("bad"), queued("other")], NOW)
    assert len(broker.claim(EXECUTOR, ["default"], VERSION, 2, NOW)) == 2
    assert len(broker.claim("exec-b", ["default"], VERSION, 1, NOW)) == 1

    finishes = [
        Finish("ok", Status.SUCCESS, output='"done"'),
        Finish("bad", Status.ERROR, error='{"type_name":"ValueError"}'),
        Finish("other", Status.SUCCESS, output='"stolen"'),  # owned by exec-b
        Finish("missing", Status.SUCCESS),
    ]
    assert broker.claim(EXECUTOR, ["default"], VERSION, 0, NOW + 10, finishes) == []
    ok, bad, other = (stored(broker, i) for i in ("ok", "bad", "other"))
    assert (ok.status, ok.output, ok.error, ok.finished_at) == (
        Status.SUCCESS,
        '"done"',
        None,
        NOW + 10,
    )
    assert (bad.status, bad.output, bad.error) == (
        Status.ERROR,
        None,
        '{"type_name":"ValueError"}',
    )
    assert (other.status, other.output, other.finished_at) == (Status.PENDING, None, None)


def test_finishes_are_written_only_while_pending(broker: Broker) -> None:
    broker.enqueue([queued("cancelled"), queued("done")], NOW)
    claim_all(broker)
    assert broker.set_status("cancelled", Status.CANCELLED, Status.PENDING, NOW + 1)
    assert broker.finish_workflow("done", Status.SUCCESS, '"first"', None, NOW + 2)
    late = [Finish("cancelled", Status.SUCCESS, '"late"'), Finish("done", Status.ERROR, None, "x")]
    broker.claim(EXECUTOR, ["default"], VERSION, 0, NOW + 3, late)
    cancelled, done = stored(broker, "cancelled"), stored(broker, "done")
    assert (cancelled.status, cancelled.output) == (Status.CANCELLED, None)
    assert (done.status, done.output, done.error, done.finished_at) == (
        Status.SUCCESS,
        '"first"',
        None,
        NOW + 2,
    )


def test_finishes_and_claims_in_one_call(broker: Broker) -> None:
    broker.enqueue([queued("one"), queued("two")], NOW)
    assert [r.id for r in broker.claim(EXECUTOR, ["default"], VERSION, 1, NOW)] == ["one"]
    claimed = broker.claim(
        EXECUTOR, ["default"], VERSION, 5, NOW + 1, [Finish("one", Status.SUCCESS, "1")]
    )
    assert [r.id for r in claimed] == ["two"]
    assert stored(broker, "one").status is Status.SUCCESS


# -- release -----------------------------------------------------------------------------


def test_release_counting_the_attempt(broker: Broker) -> None:
    broker.enqueue([queued("wf-1")], NOW)
    claim_all(broker)
    assert broker.release(EXECUTOR, ["wf-1"], NOW + 1, count_attempt=True) == ["wf-1"]
    row = stored(broker, "wf-1")
    assert (row.status, row.executor_id) == (Status.ENQUEUED, None)
    again = claim_all(broker, executor_id="exec-b")
    assert [(r.id, r.attempts) for r in again] == [("wf-1", 2)]


def test_release_without_counting_the_attempt(broker: Broker) -> None:
    broker.enqueue([queued("wf-1")], NOW)
    claim_all(broker)
    assert broker.release(EXECUTOR, ["wf-1"], NOW + 1, count_attempt=False) == ["wf-1"]
    again = claim_all(broker, executor_id="exec-b")
    assert [(r.id, r.attempts) for r in again] == [("wf-1", 1)]  # as if never started


def test_release_is_guarded_by_owner_and_status(broker: Broker) -> None:
    broker.enqueue([queued(i, queue=f"q-{i}") for i in ("mine", "theirs", "done", "waiting")], NOW)
    claim_all(broker, ("q-mine", "q-done"))
    claim_all(broker, ("q-theirs",), executor_id="exec-b")
    broker.claim(EXECUTOR, [], VERSION, 0, NOW, [Finish("done", Status.SUCCESS)])

    ids = ["theirs", "done", "waiting", "nope", "mine", "mine"]
    assert broker.release(EXECUTOR, ids, NOW + 1, count_attempt=True) == ["mine"]
    assert stored(broker, "mine").status is Status.ENQUEUED
    theirs = stored(broker, "theirs")
    assert (theirs.status, theirs.executor_id) == (Status.PENDING, "exec-b")
    assert stored(broker, "done").status is Status.SUCCESS
    assert stored(broker, "waiting").status is Status.ENQUEUED
    assert broker.release(EXECUTOR, ["mine"], NOW + 2, count_attempt=True) == []
    assert broker.release(EXECUTOR, [], NOW, count_attempt=True) == []


def test_release_gives_a_queue_to_work_that_had_none(broker: Broker) -> None:
    # A workflow run directly (started PENDING, no queue) handed to a queue.
    direct = NewWorkflow(
        id="direct",
        name="n",
        status=Status.PENDING,
        inputs="{}",
        executor_id=EXECUTOR,
        app_version=VERSION,
        created_at=NOW,
        started_at=NOW,
    )
    broker.start_workflow(direct, NOW)
    assert broker.release(
        EXECUTOR, ["direct"], NOW + 1, count_attempt=True, default_queue="emails"
    ) == ["direct"]
    assert stored(broker, "direct").queue == "emails"
    assert [r.id for r in claim_all(broker, ("emails",))] == ["direct"]


# -- retry_later -------------------------------------------------------------------------


def test_retry_later_delays_and_counts_a_retry_not_an_attempt(broker: Broker) -> None:
    broker.enqueue([queued("wf-1")], NOW)
    claim_all(broker)
    err = '{"type_name":"IOError"}'
    assert broker.retry_later("wf-1", EXECUTOR, NOW + 5_000, err, NOW + 10)
    row = stored(broker, "wf-1")
    assert (row.status, row.executor_id, row.retries, row.error) == (
        Status.DELAYED,
        None,
        1,
        err,
    )
    assert row.delay_until == NOW + 5_000
    assert claim_all(broker, now=NOW + 10_000) == []  # DELAYED until a tick promotes it

    assert broker.tick(NOW + 5_000).promoted == 1
    again = claim_all(broker, executor_id="exec-b", now=NOW + 5_000)
    assert [(r.id, r.attempts, r.retries, r.started_at) for r in again] == [("wf-1", 1, 1, NOW)]


def test_retry_later_due_now_is_enqueued_at_once(broker: Broker) -> None:
    broker.enqueue([queued("wf-1")], NOW)
    claim_all(broker)
    assert broker.retry_later("wf-1", EXECUTOR, NOW + 10, None, NOW + 10)
    assert stored(broker, "wf-1").status is Status.ENQUEUED
    assert [r.retries for r in claim_all(broker)] == [1]


def test_retry_later_is_guarded_by_owner_and_status(broker: Broker) -> None:
    broker.enqueue([queued("wf-1"), queued("waiting")], NOW)
    broker.claim(EXECUTOR, ["default"], VERSION, 1, NOW)
    assert not broker.retry_later("wf-1", "exec-b", NOW + 1, None, NOW)
    assert not broker.retry_later("waiting", EXECUTOR, NOW + 1, None, NOW)
    assert not broker.retry_later("nope", EXECUTOR, NOW + 1, None, NOW)
    row = stored(broker, "wf-1")
    assert (row.status, row.executor_id, row.retries) == (Status.PENDING, EXECUTOR, 0)


def test_a_started_workflow_no_longer_expires(broker: Broker) -> None:
    # "expires" means "not started by then": once claimed, a workflow handed back (crash,
    # shutdown) or waiting for a retry must resume, not be cancelled.
    broker.enqueue([queued("short", expires_at=NOW + 1_000)], NOW)
    (claimed,) = broker.claim(EXECUTOR, ["default"], VERSION, 10, NOW + 10)
    assert claimed.expires_at is None
    assert broker.release(EXECUTOR, ["short"], NOW + 20, count_attempt=True) == ["short"]
    tick = broker.tick(NOW + 5_000)
    assert tick.expired == 0
    assert stored(broker, "short").status is Status.ENQUEUED
    assert [r.id for r in claim_all(broker, now=NOW + 5_000)] == ["short"]
