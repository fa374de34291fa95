"""Conformance of messages, events and parked waits, on Postgres and SQLite: park gives the
slots back, every writer wakes exactly the parked waiters concerned, the queue tick is the
fallback and cancels parked work past its deadline, and messages are taken exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest

from taskflow.broker import Broker
from taskflow.models import Finish, Wait
from taskflow.status import Status

from .queueing import EXECUTOR, NOW, VERSION, claim_all, queued, stored


def running(broker: Broker, *ids: str, timeout_ms: int | None = None) -> None:
    """Enqueue and claim ``ids``: PENDING, owned by EXECUTOR, attempt 1."""
    broker.enqueue([queued(i, timeout_ms=timeout_ms) for i in ids], NOW)
    assert {r.id for r in claim_all(broker)} == set(ids)


def test_park_gives_the_slot_back_and_the_next_claim_does_not_count_an_attempt(
    broker: Broker,
) -> None:
    running(broker, "w")
    status = broker.park("w", EXECUTOR, Wait(kind="sleep", until=NOW + 60_000), NOW)
    assert status is Status.DELAYED
    row = stored(broker, "w")
    assert (row.executor_id, row.delay_until, row.attempts) == (None, NOW + 60_000, 0)
    assert sum(d.running for d in broker.queue_depths()) == 0
    assert broker.tick(NOW + 59_999).promoted == 0
    assert broker.tick(NOW + 60_000).promoted == 1
    [again] = claim_all(broker, now=NOW + 60_000)
    assert (again.id, again.attempts, again.fresh) == ("w", 1, False)


def test_park_is_guarded_by_owner_and_status(broker: Broker) -> None:
    running(broker, "w")
    wait = Wait(kind="sleep", until=NOW + 1)
    assert broker.park("w", "someone-else", wait, NOW) is None
    broker.cancel(["w"], NOW)
    assert broker.park("w", EXECUTOR, wait, NOW) is None
    assert stored(broker, "w").status is Status.CANCELLED


def _recv_wait(workflow_id: str, topic: str = "") -> Wait:
    return Wait(kind="recv", until=NOW + 60_000, wait_on=workflow_id, wait_key=topic)


def test_a_send_wakes_a_workflow_parked_in_recv_on_that_topic_only(broker: Broker) -> None:
    running(broker, "r")
    assert broker.park("r", EXECUTOR, _recv_wait("r", "t"), NOW) is Status.DELAYED
    other = broker.send_message("r", "", '"other topic"', NOW)
    assert (other.found, other.inserted) == (True, True)
    assert stored(broker, "r").status is Status.DELAYED
    broker.send_message("r", "t", '"mine"', NOW)
    assert stored(broker, "r").status is Status.ENQUEUED


def test_park_goes_straight_back_to_the_queue_when_the_message_is_there(broker: Broker) -> None:
    running(broker, "r")
    broker.send_message("r", "", "1", NOW)
    assert broker.park("r", EXECUTOR, _recv_wait("r"), NOW) is Status.ENQUEUED


def test_messages_are_taken_once_in_order_and_recorded_as_the_step(broker: Broker) -> None:
    running(broker, "r")
    for i in range(3):
        broker.send_message("r", "", str(i), NOW)
    taken = [broker.take_message("r", "", step, "taskflow.recv", NOW, NOW) for step in range(4)]
    pending = Status.PENDING
    assert taken == [("0", pending), ("1", pending), ("2", pending), (None, pending)]
    assert [s.output for s in broker.load_steps("r")] == ["0", "1", "2"]
    # A step already recorded takes nothing more.
    broker.send_message("r", "", "3", NOW)
    assert broker.take_message("r", "", 0, "taskflow.recv", NOW, NOW) == (None, Status.PENDING)


def test_concurrent_takers_never_take_one_message_twice(
    broker: Broker, make_broker: Callable[[], Broker]
) -> None:
    setup = broker
    running(setup, "r")
    total = 60
    for i in range(total):
        setup.send_message("r", "", str(i), NOW)
    got: list[str] = []
    lock = threading.Lock()
    steps = iter(range(10_000))

    def taker() -> None:
        broker = make_broker()
        while True:
            with lock:
                step = next(steps)
            message, _ = broker.take_message("r", "", step, "taskflow.recv", NOW, NOW)
            if message is None:
                return
            with lock:
                got.append(message)

    threads = [threading.Thread(target=taker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(got, key=int) == [str(i) for i in range(total)]
    assert len(setup.load_steps("r")) == total


def test_a_send_key_sends_once_even_after_the_message_was_read(broker: Broker) -> None:
    running(broker, "r")
    assert broker.send_message("r", "", "1", NOW, send_key="k").inserted
    broker.take_message("r", "", 0, "taskflow.recv", NOW, NOW)
    assert not broker.send_message("r", "", "1", NOW, send_key="k").inserted
    assert broker.take_message("r", "", 1, "taskflow.recv", NOW, NOW)[0] is None


def test_a_send_to_nobody_writes_nothing(broker: Broker) -> None:
    delivery = broker.send_message("ghost", "", "1", NOW)
    assert (delivery.found, delivery.inserted) == (False, False)


def test_a_send_from_a_workflow_records_its_step_in_the_same_commit(broker: Broker) -> None:
    running(broker, "r", "s")
    delivery = broker.send_message("r", "", "1", NOW, send_key="s:0", sender=("s", 0, "send"))
    assert delivery.sender_status is Status.PENDING
    assert [(x.step_id, x.name) for x in broker.load_steps("s")] == [(0, "send")]


def test_set_event_keeps_the_latest_value_and_wakes_parked_readers(broker: Broker) -> None:
    running(broker, "pub", "reader", "elsewhere")
    event_wait = Wait(kind="event", until=None, wait_on="pub", wait_key="k")
    assert broker.park("reader", EXECUTOR, event_wait, NOW) is Status.DELAYED
    other = Wait(kind="event", until=None, wait_on="pub", wait_key="other")
    assert broker.park("elsewhere", EXECUTOR, other, NOW) is Status.DELAYED
    assert broker.set_event("pub", "k", "1", NOW, step=(0, "taskflow.set_event")) is (
        Status.PENDING
    )
    broker.set_event("pub", "k", "2", NOW)
    assert broker.get_event("pub", "k") == ("2", Status.PENDING)
    assert broker.get_event("pub", "nope") == (None, Status.PENDING)
    assert broker.get_event("ghost", "k") == (None, None)
    assert stored(broker, "reader").status is Status.ENQUEUED
    assert stored(broker, "elsewhere").status is Status.DELAYED


def test_the_tick_wakes_child_waiters_and_catches_missed_wakeups(broker: Broker) -> None:
    running(broker, "parent", "child", "inbox")
    child_wait = Wait(kind="child", until=None, wait_on="child")
    assert broker.park("parent", EXECUTOR, child_wait, NOW) is Status.DELAYED
    assert broker.park("inbox", EXECUTOR, _recv_wait("inbox"), NOW) is Status.DELAYED
    assert broker.tick(NOW).promoted == 0
    broker.claim(EXECUTOR, ["default"], VERSION, 0, NOW, [Finish("child", Status.SUCCESS, "1")])
    # A message that arrived without waking (as when a send races the park): the tick
    # wakes its receiver.
    _insert_unannounced_message(broker, "inbox")
    assert broker.tick(NOW).promoted == 2
    assert stored(broker, "parent").status is Status.ENQUEUED
    assert stored(broker, "inbox").status is Status.ENQUEUED


def _insert_unannounced_message(broker: Broker, workflow_id: str) -> None:
    sql = (
        "INSERT INTO {t} (destination_id, topic, message, created_at) "
        "VALUES ('" + workflow_id + "', '', '1', 0)"
    )
    schema = getattr(broker, "schema", None)
    table = f'"{schema}".messages' if schema else "messages"
    if broker.dialect == "postgresql":
        with broker._conn() as conn:  # type: ignore[attr-defined]
            conn.execute(sql.format(t=table))
    else:
        broker._conn().execute(sql.format(t=table))  # type: ignore[attr-defined]


def test_the_tick_cancels_parked_workflows_past_their_deadline(broker: Broker) -> None:
    running(broker, "w", timeout_ms=1_000)
    assert broker.park("w", EXECUTOR, Wait(kind="sleep", until=NOW + 60_000), NOW) is (
        Status.DELAYED
    )
    assert broker.tick(NOW + 999).timed_out == 0
    assert broker.tick(NOW + 1_000).timed_out == 1
    assert stored(broker, "w").status is Status.CANCELLED


def test_a_park_racing_a_send_on_postgres_sees_the_message(
    broker: Broker, database_url: str
) -> None:
    """A send that holds the receiver's row while the receiver parks: the park waits for
    it and then sees its message (goes back to the queue), instead of parking past it."""
    if broker.dialect != "postgresql":
        pytest.skip("SQLite admits one writer at a time: a park never overlaps a send")
    running(broker, "r")
    with psycopg.connect(database_url) as sender:
        sender.execute("SELECT id FROM taskflow.workflows WHERE id = 'r' FOR NO KEY UPDATE")
        sender.execute(
            "INSERT INTO taskflow.messages (destination_id, topic, message, created_at) "
            "VALUES ('r', '', '1', 0)"
        )
        result: list[Status | None] = []
        parker = threading.Thread(
            target=lambda: result.append(broker.park("r", EXECUTOR, _recv_wait("r"), NOW))
        )
        parker.start()
        parker.join(0.5)
        assert parker.is_alive(), "the park did not wait for the send holding the row"
        sender.commit()
    parker.join(10)
    assert result == [Status.ENQUEUED]
