"""Conformance of enqueue, dedup, delays, expiry and tick, on both dialects."""

from __future__ import annotations

from taskflow.broker import Broker
from taskflow.models import EnqueueResult, Finish, NewWorkflow
from taskflow.status import Status

from .queueing import EXECUTOR, NOW, VERSION, claim_all, queued, stored


def test_enqueue_of_5000_in_one_batch_creates_all_in_order(broker: Broker) -> None:
    news = [queued(f"wf-{i:05d}") for i in range(5_000)]
    results = broker.enqueue(news, NOW)
    assert results == [EnqueueResult(id=n.id, created=True) for n in news]
    claimed = claim_all(broker)
    assert [r.id for r in claimed] == [n.id for n in news]  # FIFO within one millisecond


def test_enqueue_of_nothing_is_a_no_op(broker: Broker) -> None:
    assert broker.enqueue([], NOW) == []


def test_enqueue_writes_a_waiting_row_with_every_field(broker: Broker) -> None:
    new = queued(
        "wf-full",
        queue="emails",
        priority=7,
        app_version="v9",
        dedup_id="cart-7",
        partition_key="user-7",
        expires_at=NOW + 60_000,
        timeout_ms=5_000,
        user="alice",
        parent_id="parent-1",
        created_at=NOW - 5,
        inputs='{"args":[1],"kwargs":{"x":"é"}}',
    )
    assert broker.enqueue([new], NOW) == [EnqueueResult(id="wf-full", created=True)]
    row = stored(broker, "wf-full")
    assert row.status is Status.ENQUEUED
    assert (row.name, row.inputs, row.queue) == (new.name, new.inputs, "emails")
    assert (row.priority, row.app_version, row.user, row.parent_id) == (
        7,
        "v9",
        "alice",
        "parent-1",
    )
    assert (row.dedup_id, row.partition_key) == ("cart-7", "user-7")
    assert (row.expires_at, row.timeout_ms, row.delay_until) == (NOW + 60_000, 5_000, None)
    assert row.created_at == NOW - 5
    # Not started: no owner, no attempt, no start, no deadline yet.
    assert (row.executor_id, row.attempts, row.started_at, row.deadline_at) == (None, 0, None, None)
    assert (row.output, row.error, row.finished_at, row.retries) == (None, None, None, 0)


def test_enqueue_without_priority_stores_none(broker: Broker) -> None:
    broker.enqueue([queued("wf-1")], NOW)
    assert stored(broker, "wf-1").priority is None


def test_enqueue_without_queue_goes_to_default(broker: Broker) -> None:
    broker.enqueue([queued("wf-1", queue=None)], NOW)
    assert stored(broker, "wf-1").queue == "default"
    assert [r.id for r in claim_all(broker, ("default",))] == ["wf-1"]


# -- conflicts ---------------------------------------------------------------------------


def test_duplicate_ids_in_one_batch_the_first_wins(broker: Broker) -> None:
    news = [
        queued("a", inputs='{"first":true}'),
        queued("b"),
        queued("a", inputs='{"first":false}'),
        queued("a", inputs='{"first":false}'),
    ]
    assert broker.enqueue(news, NOW) == [
        EnqueueResult(id="a", created=True),
        EnqueueResult(id="b", created=True),
        EnqueueResult(id="a", created=False, conflict="id", existing_id="a"),
        EnqueueResult(id="a", created=False, conflict="id", existing_id="a"),
    ]
    assert stored(broker, "a").inputs == '{"first":true}'


def test_existing_id_writes_nothing_and_reports_the_id(broker: Broker) -> None:
    broker.enqueue([queued("a", inputs='{"v":1}')], NOW)
    claim_all(broker)
    broker.claim(EXECUTOR, ["default"], VERSION, 0, NOW, [Finish("a", Status.SUCCESS, '"ok"')])
    results = broker.enqueue([queued("x"), queued("a", inputs='{"v":2}'), queued("y")], NOW + 1)
    assert results == [
        EnqueueResult(id="x", created=True),
        EnqueueResult(id="a", created=False, conflict="id", existing_id="a"),
        EnqueueResult(id="y", created=True),
    ]
    row = stored(broker, "a")
    assert (row.status, row.inputs, row.output) == (Status.SUCCESS, '{"v":1}', '"ok"')


def test_dedup_key_is_held_while_enqueued_and_pending(broker: Broker) -> None:
    assert broker.enqueue([queued("first", dedup_id="cart-7")], NOW)[0].created
    assert broker.find_dedup("default", "cart-7") == "first"
    taken = EnqueueResult(id="second", created=False, conflict="dedup", existing_id="first")
    assert broker.enqueue([queued("second", dedup_id="cart-7")], NOW) == [taken]
    assert broker.get_workflow("second") is None

    assert [r.id for r in claim_all(broker)] == ["first"]  # now PENDING: still held
    assert broker.enqueue([queued("second", dedup_id="cart-7")], NOW) == [taken]
    assert broker.find_dedup("default", "cart-7") == "first"

    # Another queue, or another key, is free.
    assert broker.enqueue([queued("other-q", queue="q2", dedup_id="cart-7")], NOW)[0].created
    assert broker.enqueue([queued("other-k", dedup_id="cart-8")], NOW)[0].created

    # Once the holder finished, the key is free again.
    broker.claim(EXECUTOR, ["default"], VERSION, 0, NOW, [Finish("first", Status.SUCCESS)])
    assert broker.find_dedup("default", "cart-7") is None
    assert broker.enqueue([queued("third", dedup_id="cart-7")], NOW) == [
        EnqueueResult(id="third", created=True)
    ]
    assert broker.find_dedup("default", "cart-7") == "third"


def test_dedup_key_is_held_while_delayed(broker: Broker) -> None:
    broker.enqueue([queued("later", dedup_id="k", delay_until=NOW + 1_000)], NOW)
    assert broker.enqueue([queued("now", dedup_id="k")], NOW) == [
        EnqueueResult(id="now", created=False, conflict="dedup", existing_id="later")
    ]


def test_dedup_duplicates_in_one_batch_the_first_wins(broker: Broker) -> None:
    results = broker.enqueue(
        [queued("a", dedup_id="k"), queued("b", dedup_id="k"), queued("c")], NOW
    )
    assert results == [
        EnqueueResult(id="a", created=True),
        EnqueueResult(id="b", created=False, conflict="dedup", existing_id="a"),
        EnqueueResult(id="c", created=True),
    ]


def test_cancelled_holder_frees_the_dedup_key(broker: Broker) -> None:
    broker.enqueue([queued("a", dedup_id="k")], NOW)
    assert broker.set_status("a", Status.CANCELLED, Status.ENQUEUED, NOW + 1)
    assert broker.enqueue([queued("b", dedup_id="k")], NOW + 2)[0].created


def test_find_dedup_unknown_key_is_none(broker: Broker) -> None:
    assert broker.find_dedup("default", "nothing") is None


# -- delays, expiry, tick ----------------------------------------------------------------


def test_future_delay_is_delayed_until_tick_promotes_it(broker: Broker) -> None:
    due = NOW + 10_000
    broker.enqueue([queued("later", delay_until=due), queued("now", delay_until=NOW)], NOW)
    assert stored(broker, "later").status is Status.DELAYED
    assert stored(broker, "later").delay_until == due
    assert stored(broker, "now").status is Status.ENQUEUED  # not after now: runnable

    assert [r.id for r in claim_all(broker, now=due + 1)] == ["now"]  # DELAYED is never claimed
    tick = broker.tick(due - 1)
    assert (tick.promoted, tick.expired, tick.next_due) == (0, 0, due)
    assert stored(broker, "later").status is Status.DELAYED

    tick = broker.tick(due)
    assert (tick.promoted, tick.expired, tick.next_due) == (1, 0, None)
    assert stored(broker, "later").status is Status.ENQUEUED
    assert [r.id for r in claim_all(broker, now=due)] == ["later"]


def test_tick_reports_the_earliest_remaining_due_time(broker: Broker) -> None:
    broker.enqueue(
        [queued(f"d{i}", delay_until=NOW + 1_000 * i) for i in (3, 1, 2)],
        NOW,
    )
    assert broker.tick(NOW).next_due == NOW + 1_000
    tick = broker.tick(NOW + 1_500)
    assert (tick.promoted, tick.next_due) == (1, NOW + 2_000)
    tick = broker.tick(NOW + 5_000)
    assert (tick.promoted, tick.next_due) == (2, None)
    assert broker.tick(NOW + 6_000) == type(tick)(promoted=0, expired=0, next_due=None)


def test_expired_work_is_never_claimed_and_tick_cancels_it(broker: Broker) -> None:
    expires = NOW + 1_000
    broker.enqueue(
        [
            queued("expiring", expires_at=expires),
            queued("delayed-expiring", delay_until=NOW + 5_000, expires_at=expires),
            queued("kept", expires_at=NOW + 60_000),
            queued("forever"),
        ],
        NOW,
    )
    # Past expiry, a claim skips it even before any tick ran.
    assert {r.id for r in claim_all(broker, now=expires, limit=1)} == {"kept", "forever"}

    tick = broker.tick(expires)
    assert (tick.promoted, tick.expired, tick.next_due) == (0, 2, None)
    for wid in ("expiring", "delayed-expiring"):
        row = stored(broker, wid)
        assert (row.status, row.finished_at, row.error) == (Status.CANCELLED, expires, None)
    assert broker.tick(expires + 1).expired == 0


def test_a_due_but_expired_delayed_row_is_cancelled_not_promoted(broker: Broker) -> None:
    broker.enqueue([queued("x", delay_until=NOW + 10, expires_at=NOW + 20)], NOW)
    tick = broker.tick(NOW + 30)
    assert (tick.promoted, tick.expired) == (0, 1)
    assert stored(broker, "x").status is Status.CANCELLED


def test_enqueue_status_ignores_the_new_rows_status_field(broker: Broker) -> None:
    new = NewWorkflow(
        id="x", name="n", status=Status.PENDING, inputs="{}", queue="default", created_at=NOW
    )
    broker.enqueue([new], NOW)
    row = stored(broker, "x")
    assert (row.status, row.executor_id, row.attempts) == (Status.ENQUEUED, None, 0)
