"""Conformance of schedule storage and beat leadership on both dialects: creating, upserting
and replacing schedules, pausing and resuming, finding due ones, firing them atomically and
only once (also under races and after a lost lease), and the beat lease with its terms.

Time is the ``now`` each call passes: nothing here sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from taskflow.broker import Broker
from taskflow.broker.base import Listener
from taskflow.errors import ConfigurationError
from taskflow.models import BeatLease, NewWorkflow, ScheduleRow
from taskflow.status import Status

from .queueing import NOW, queued, race, stored, wait_until

MINUTE = 60_000
LEASE = 30_000


def schedule(
    name: str,
    *,
    workflow_name: str = "reports.nightly",
    expression: str = "*/5 * * * *",
    tz: str = "UTC",
    next_fire_at: int = NOW + 5 * MINUTE,
    source: str = "api",
    context: str = "null",
    inputs: str | None = None,
    backfill: bool = False,
    queue: str | None = None,
    priority: int | None = None,
    options: str = "{}",
    paused: bool = False,
    last_fired_at: int | None = None,
    created_at: int = NOW,
) -> ScheduleRow:
    """A schedule row as the layer above would build it."""
    return ScheduleRow(
        name=name,
        workflow_name=workflow_name,
        expression=expression,
        tz=tz,
        context=context,
        inputs=inputs,
        backfill=backfill,
        queue=queue,
        priority=priority,
        options=options,
        source=source,
        paused=paused,
        next_fire_at=next_fire_at,
        last_fired_at=last_fired_at,
        created_at=created_at,
        updated_at=created_at,
    )


def fire(
    workflow_id: str,
    *,
    queue: str | None = "default",
    priority: int | None = None,
    delay_until: int | None = None,
) -> NewWorkflow:
    """A workflow one fire enqueues."""
    return queued(
        workflow_id,
        name="reports.nightly",
        queue=queue,
        priority=priority,
        delay_until=delay_until,
    )


def got(broker: Broker, name: str) -> ScheduleRow:
    """The stored schedule, which must exist."""
    row = broker.get_schedule(name)
    assert row is not None, name
    return row


def names(rows: Sequence[ScheduleRow]) -> list[str]:
    return [r.name for r in rows]


# -- create, get, list, delete -------------------------------------------------------------


def test_create_stores_every_field_and_refuses_a_taken_name(broker: Broker) -> None:
    full = schedule(
        "nightly",
        workflow_name="orders.report",
        expression="0 3 * * *",
        tz="Europe/Paris",
        context='{"team":"ops"}',
        inputs='{"args":[1],"kwargs":{"x":2}}',
        backfill=True,
        queue="reports",
        priority=3,
        options='{"timeout":60}',
        source="code",
        paused=True,
        next_fire_at=NOW + 7,
        last_fired_at=NOW - 7,
        created_at=NOW - 100,
    )
    assert broker.create_schedule(full) is True
    assert got(broker, "nightly") == full

    again = schedule("nightly", workflow_name="other.flow", next_fire_at=NOW + 99)
    assert broker.create_schedule(again) is False
    assert got(broker, "nightly") == full  # nothing written

    minimal = schedule("plain")
    assert broker.create_schedule(minimal) is True
    stored_plain = got(broker, "plain")
    assert stored_plain == minimal
    assert (stored_plain.backfill, stored_plain.paused, stored_plain.inputs) == (False, False, None)


def test_get_list_and_delete(broker: Broker) -> None:
    assert broker.get_schedule("missing") is None
    assert broker.list_schedules() == []
    for name in ("b", "c", "a"):
        assert broker.create_schedule(schedule(name))
    assert names(broker.list_schedules()) == ["a", "b", "c"]

    assert broker.delete_schedule("b") is True
    assert broker.delete_schedule("b") is False
    assert broker.delete_schedule("missing") is False
    assert names(broker.list_schedules()) == ["a", "c"]
    assert broker.get_schedule("b") is None


# -- put_schedules -----------------------------------------------------------------------------


def test_put_inserts_new_schedules(broker: Broker) -> None:
    rows = [schedule("x", source="code"), schedule("y", source="code", paused=True)]
    broker.put_schedules(rows, NOW + 1)
    assert names(broker.list_schedules()) == ["x", "y"]
    y = got(broker, "y")
    assert y.paused is True
    assert (y.created_at, y.updated_at) == (NOW, NOW + 1)


def test_put_keeps_state_when_expression_and_tz_are_unchanged(broker: Broker) -> None:
    broker.create_schedule(schedule("s", next_fire_at=NOW + 5 * MINUTE, created_at=NOW))
    broker.pause_schedule("s", NOW + 1)
    # Fired once meanwhile: next and last fire moved.
    broker.resume_schedule("s", None, NOW + 2)
    assert (
        broker.fire_schedule(
            "s", NOW + 5 * MINUTE, NOW + 10 * MINUTE, NOW + 5 * MINUTE, [], None, NOW + 5 * MINUTE
        )
        == []
    )
    broker.pause_schedule("s", NOW + 3)

    redeclared = schedule(
        "s",
        workflow_name="reports.v2",
        context='{"v":2}',
        inputs='{"args":[],"kwargs":{}}',
        backfill=True,
        queue="reports",
        priority=7,
        options='{"expires":5}',
        source="code",
        next_fire_at=NOW + 99 * MINUTE,  # computed from now by the caller: ignored here
        paused=False,
        last_fired_at=None,
        created_at=NOW + 50,
    )
    broker.put_schedules([redeclared], NOW + 6 * MINUTE)
    row = got(broker, "s")
    # Every definition column is overwritten...
    assert (row.workflow_name, row.context, row.inputs, row.backfill) == (
        "reports.v2",
        '{"v":2}',
        '{"args":[],"kwargs":{}}',
        True,
    )
    assert (row.queue, row.priority, row.options, row.source) == (
        "reports",
        7,
        '{"expires":5}',
        "code",
    )
    assert row.updated_at == NOW + 6 * MINUTE
    # ...the state is kept.
    assert row.next_fire_at == NOW + 10 * MINUTE
    assert row.paused is True
    assert row.created_at == NOW
    assert row.last_fired_at == NOW + 5 * MINUTE


@pytest.mark.parametrize(
    "change",
    [{"expression": "0 * * * *"}, {"tz": "Asia/Tokyo"}],
    ids=["expression", "tz"],
)
def test_put_takes_the_new_next_fire_when_the_timetable_changed(
    broker: Broker, change: dict[str, str]
) -> None:
    broker.create_schedule(schedule("s", next_fire_at=NOW + 5 * MINUTE, last_fired_at=NOW - 1))
    broker.pause_schedule("s", NOW)
    changed = schedule(
        "s",
        next_fire_at=NOW + 60 * MINUTE,
        expression=change.get("expression", "*/5 * * * *"),
        tz=change.get("tz", "UTC"),
    )
    broker.put_schedules([changed], NOW + 1)
    row = got(broker, "s")
    assert row.next_fire_at == NOW + 60 * MINUTE
    assert (row.expression, row.tz) == (
        change.get("expression", "*/5 * * * *"),
        change.get("tz", "UTC"),
    )
    # Pause, creation and last fire are still kept.
    assert (row.paused, row.created_at, row.last_fired_at) == (True, NOW, NOW - 1)


def test_put_with_replace_source_deletes_the_missing_schedules_of_that_source_only(
    broker: Broker,
) -> None:
    broker.put_schedules(
        [schedule("code-a", source="code"), schedule("code-b", source="code")], NOW
    )
    broker.create_schedule(schedule("api-a", source="api"))
    broker.create_schedule(schedule("api-b", source="api"))

    # Without replace_source nothing is deleted.
    broker.put_schedules([schedule("code-a", source="code")], NOW + 1)
    assert names(broker.list_schedules()) == ["api-a", "api-b", "code-a", "code-b"]

    # code-b left the code: it goes; api schedules stay; api-b declared in code becomes code.
    broker.put_schedules(
        [schedule("code-a", source="code"), schedule("api-b", source="code")],
        NOW + 2,
        replace_source="code",
    )
    assert names(broker.list_schedules()) == ["api-a", "api-b", "code-a"]
    assert got(broker, "api-b").source == "code"

    # An api set replaced atomically (apply): api-a goes, the code ones stay.
    broker.put_schedules([schedule("api-c", source="api")], NOW + 3, replace_source="api")
    assert names(broker.list_schedules()) == ["api-b", "api-c", "code-a"]

    # No code schedules declared any more: all of that source go.
    broker.put_schedules([], NOW + 4, replace_source="code")
    assert names(broker.list_schedules()) == ["api-c"]


def test_put_refuses_a_name_given_twice_and_writes_nothing(broker: Broker) -> None:
    broker.create_schedule(schedule("kept", source="code"))
    with pytest.raises(ConfigurationError, match="'dup'"):
        broker.put_schedules(
            [schedule("new"), schedule("dup"), schedule("dup")], NOW, replace_source="code"
        )
    assert names(broker.list_schedules()) == ["kept"]


# -- pause and resume ----------------------------------------------------------------------


def test_pause_and_resume(broker: Broker) -> None:
    assert broker.pause_schedule("missing", NOW) is False
    assert broker.resume_schedule("missing", NOW, NOW) is False
    broker.create_schedule(schedule("s", next_fire_at=NOW + 1))

    assert broker.pause_schedule("s", NOW + 10) is True
    row = got(broker, "s")
    assert (row.paused, row.updated_at) == (True, NOW + 10)
    assert broker.pause_schedule("s", NOW + 11) is True  # pausing twice is harmless

    # Resumed with the next time after now: the pause is not backfilled.
    assert broker.resume_schedule("s", NOW + 5 * MINUTE, NOW + 4 * MINUTE) is True
    row = got(broker, "s")
    assert (row.paused, row.next_fire_at, row.updated_at) == (
        False,
        NOW + 5 * MINUTE,
        NOW + 4 * MINUTE,
    )

    # Resumed without a time: the stored one is kept.
    broker.pause_schedule("s", NOW + 6 * MINUTE)
    assert broker.resume_schedule("s", None, NOW + 7 * MINUTE) is True
    row = got(broker, "s")
    assert (row.paused, row.next_fire_at) == (False, NOW + 5 * MINUTE)

    # Resuming a running schedule moves nothing: its next time may be due and unfired.
    assert broker.resume_schedule("s", NOW + 60 * MINUTE, NOW + 8 * MINUTE) is True
    assert got(broker, "s").next_fire_at == NOW + 5 * MINUTE


# -- due schedules -------------------------------------------------------------------------


def test_due_schedules_soonest_first_without_paused_or_future_ones(broker: Broker) -> None:
    assert broker.due_schedules(NOW, 10) == []
    assert broker.next_schedule_due() is None
    for name, at in [
        ("late", NOW - 1),
        ("b-early", NOW - 50),
        ("a-early", NOW - 50),
        ("now", NOW),
        ("future", NOW + 1),
        ("paused", NOW - 100),
    ]:
        broker.create_schedule(schedule(name, next_fire_at=at))
    broker.pause_schedule("paused", NOW)

    assert names(broker.due_schedules(NOW, 10)) == ["a-early", "b-early", "late", "now"]
    assert names(broker.due_schedules(NOW, 2)) == ["a-early", "b-early"]
    assert broker.due_schedules(NOW - 51, 10) == []
    assert broker.next_schedule_due() == NOW - 50

    broker.resume_schedule("paused", None, NOW)
    assert broker.next_schedule_due() == NOW - 100
    assert names(broker.due_schedules(NOW, 1)) == ["paused"]

    for name in ("late", "b-early", "a-early", "now", "paused"):
        broker.pause_schedule(name, NOW)
    assert broker.next_schedule_due() == NOW + 1
    broker.pause_schedule("future", NOW)
    assert broker.next_schedule_due() is None


# -- firing --------------------------------------------------------------------------------


def test_fire_advances_and_enqueues_in_one_step(broker: Broker) -> None:
    at = NOW + 5 * MINUTE
    broker.create_schedule(schedule("s", next_fire_at=at))
    news = [fire("s@1", queue="reports", priority=2), fire("s@2", delay_until=at + MINUTE)]
    results = broker.fire_schedule("s", at, at + 10 * MINUTE, at, news, None, at + 3)
    assert results is not None
    assert [(r.id, r.created) for r in results] == [("s@1", True), ("s@2", True)]
    row = got(broker, "s")
    assert (row.next_fire_at, row.last_fired_at, row.updated_at) == (at + 10 * MINUTE, at, at + 3)
    first = stored(broker, "s@1")
    assert (first.status, first.queue, first.priority, first.name) == (
        Status.ENQUEUED,
        "reports",
        2,
        "reports.nightly",
    )
    assert stored(broker, "s@2").status is Status.DELAYED

    # last_fired None (nothing fired, only skipped ahead) keeps the recorded last fire.
    results = broker.fire_schedule("s", at + 10 * MINUTE, at + 20 * MINUTE, None, [], None, at)
    assert results == []
    row = got(broker, "s")
    assert (row.next_fire_at, row.last_fired_at) == (at + 20 * MINUTE, at)


def test_fire_with_a_stale_time_writes_nothing(broker: Broker) -> None:
    broker.create_schedule(schedule("s", next_fire_at=NOW))
    assert broker.fire_schedule("s", NOW, NOW + MINUTE, NOW, [fire("s@0")], None, NOW) is not None
    # A second beat deciding on the old time: refused, nothing enqueued.
    assert broker.fire_schedule("s", NOW, NOW + MINUTE, NOW, [fire("s@0-again")], None, NOW) is None
    assert broker.get_workflow("s@0-again") is None
    assert got(broker, "s").next_fire_at == NOW + MINUTE
    # An unknown schedule fires nothing either.
    assert broker.fire_schedule("missing", NOW, NOW + 1, NOW, [fire("m@0")], None, NOW) is None
    assert broker.get_workflow("m@0") is None


def test_fire_of_a_paused_schedule_writes_nothing(broker: Broker) -> None:
    broker.create_schedule(schedule("s", next_fire_at=NOW))
    broker.pause_schedule("s", NOW)
    assert broker.fire_schedule("s", NOW, NOW + MINUTE, NOW, [fire("s@0")], None, NOW) is None
    assert broker.get_workflow("s@0") is None
    row = got(broker, "s")
    assert (row.next_fire_at, row.last_fired_at) == (NOW, None)


def test_fire_does_not_duplicate_an_existing_workflow(broker: Broker) -> None:
    broker.create_schedule(schedule("s", next_fire_at=NOW))
    broker.enqueue([fire("s@0", priority=9)], NOW - 1)  # e.g. triggered by hand earlier
    results = broker.fire_schedule(
        "s", NOW, NOW + MINUTE, NOW, [fire("s@0"), fire("s@1")], None, NOW
    )
    assert results is not None
    assert [(r.id, r.created, r.conflict) for r in results] == [
        ("s@0", False, "id"),
        ("s@1", True, None),
    ]
    assert stored(broker, "s@0").priority == 9  # the first one kept as it was
    assert got(broker, "s").next_fire_at == NOW + MINUTE


def test_fire_wakes_listening_workers(broker: Broker, make_broker: Callable[[], Broker]) -> None:
    other = make_broker()
    listener: Listener = other.listen()
    try:
        broker.create_schedule(schedule("s", next_fire_at=NOW))
        listener.wait(0)  # drain whatever the setup wrote (SQLite sees every write)
        assert broker.fire_schedule("s", NOW, NOW + MINUTE, NOW, [fire("s@0")], None, NOW)
        wait_until(lambda: listener.wait(0.05), "the fire to wake the listener")
    finally:
        listener.close()


def test_fire_under_a_lease_needs_the_live_lease_of_that_term(broker: Broker) -> None:
    broker.create_schedule(schedule("s", next_fire_at=NOW))
    term_a = broker.acquire_beat_lease("beat-a", LEASE, NOW)
    assert term_a == 1

    # The lease runs out and another beat takes over (term 2): the old leader, back from a
    # long pause, fires nothing, at any clock reading.
    term_b = broker.acquire_beat_lease("beat-b", LEASE, NOW + LEASE + 1)
    assert term_b == 2
    for now in (NOW, NOW + LEASE + 2):
        assert (
            broker.fire_schedule(
                "s", NOW, NOW + MINUTE, NOW, [fire("a@0")], ("beat-a", term_a), now
            )
            is None
        )
    assert broker.get_workflow("a@0") is None

    # A stale term of the current holder fires nothing either: b releases, a leads again
    # (term 3), and a decision taken under a's first term is refused.
    broker.release_beat_lease("beat-b")
    assert broker.acquire_beat_lease("beat-a", LEASE, NOW + LEASE + 3) == 3
    assert (
        broker.fire_schedule(
            "s", NOW, NOW + MINUTE, NOW, [fire("a@1")], ("beat-a", 1), NOW + LEASE + 4
        )
        is None
    )
    assert broker.get_workflow("a@1") is None

    # The current term under another holder's name is refused too.
    assert (
        broker.fire_schedule(
            "s", NOW, NOW + MINUTE, NOW, [fire("b@3")], ("beat-b", 3), NOW + LEASE + 4
        )
        is None
    )
    assert broker.get_workflow("b@3") is None

    # Holder and term right, but the lease ended before now (not renewed in time): refused.
    late = NOW + 2 * LEASE + 4
    assert (
        broker.fire_schedule("s", NOW, NOW + MINUTE, NOW, [fire("a@2")], ("beat-a", 3), late)
        is None
    )
    assert got(broker, "s").next_fire_at == NOW

    # The live lease of the current term fires.
    results = broker.fire_schedule(
        "s", NOW, NOW + MINUTE, NOW, [fire("a@3")], ("beat-a", 3), NOW + LEASE + 4
    )
    assert results is not None and [r.id for r in results] == ["a@3"]
    assert got(broker, "s").next_fire_at == NOW + MINUTE


def test_concurrent_fires_of_one_schedule_exactly_one_wins(
    broker: Broker, make_broker: Callable[[], Broker]
) -> None:
    beats = [make_broker(), make_broker()]
    rounds = 25
    broker.create_schedule(schedule("s", next_fire_at=0))
    for b in beats:
        assert b.get_schedule("s") is not None  # connect before the race

    for r in range(rounds):

        def go(i: int, r: int = r) -> object:
            # Each racer names its workflow apart, so a double fire would show as two rows.
            news = [fire(f"s@{r}-{i}")]
            return beats[i].fire_schedule("s", r, r + 1, r, news, None, NOW)

        results = race(2, go)
        winners = [i for i, res in enumerate(results) if res is not None]
        assert len(winners) == 1, f"round {r}: {results}"
        made = [i for i in range(2) if broker.get_workflow(f"s@{r}-{i}") is not None]
        assert made == winners, f"round {r}"
        assert got(broker, "s").next_fire_at == r + 1


# -- the beat lease ------------------------------------------------------------------------


def test_lease_acquire_renew_expire_and_takeover(broker: Broker) -> None:
    assert broker.beat_lease() is None
    assert broker.acquire_beat_lease("a", LEASE, NOW) == 1
    assert broker.beat_lease() == BeatLease(holder="a", term=1, lease_until=NOW + LEASE)

    # Renewing keeps the term and moves the end.
    assert broker.acquire_beat_lease("a", LEASE, NOW + 10) == 1
    assert broker.beat_lease() == BeatLease(holder="a", term=1, lease_until=NOW + 10 + LEASE)

    # Another beat cannot take a live lease, up to and including its last millisecond.
    assert broker.acquire_beat_lease("b", LEASE, NOW + 20) is None
    assert broker.acquire_beat_lease("b", LEASE, NOW + 10 + LEASE) is None
    assert broker.beat_lease() == BeatLease(holder="a", term=1, lease_until=NOW + 10 + LEASE)

    # Once it ran out, the takeover starts a new term; the old holder is out.
    t = NOW + 11 + LEASE
    assert broker.acquire_beat_lease("b", LEASE, t) == 2
    assert broker.acquire_beat_lease("a", LEASE, t + 1) is None
    assert broker.beat_lease() == BeatLease(holder="b", term=2, lease_until=t + LEASE)

    # A holder renewing late, before anyone else took over, keeps its term.
    assert broker.acquire_beat_lease("b", LEASE, t + 5 * LEASE) == 2
    # And a takeover after that counts on.
    assert broker.acquire_beat_lease("c", LEASE, t + 7 * LEASE) == 3


def test_release_hands_over_at_once(broker: Broker) -> None:
    assert broker.acquire_beat_lease("a", LEASE, NOW) == 1
    broker.release_beat_lease("b")  # not the holder: nothing happens
    assert broker.acquire_beat_lease("b", LEASE, NOW + 1) is None

    broker.release_beat_lease("a")
    assert broker.beat_lease() == BeatLease(holder="a", term=1, lease_until=0)
    assert broker.acquire_beat_lease("b", LEASE, NOW + 2) == 2
    # The released holder is refused while b's lease runs.
    assert broker.acquire_beat_lease("a", LEASE, NOW + 3) is None


def test_concurrent_acquires_exactly_one_leads(
    broker: Broker, make_broker: Callable[[], Broker]
) -> None:
    beats = [make_broker() for _ in range(3)]
    for b in beats:
        assert b.beat_lease() is None  # connect before the race
    terms: list[int] = []
    for r in range(15):
        now = NOW + r * (LEASE + 1)  # each round starts after the last lease ran out

        def take(i: int, now: int = now) -> object:
            return beats[i].acquire_beat_lease(f"beat-{i}", LEASE, now)

        results = race(3, take)
        winners = [(i, t) for i, t in enumerate(results) if t is not None]
        assert len(winners) == 1, f"round {r}: {results}"
        i, term = winners[0]
        lease = broker.beat_lease()
        assert lease is not None and (lease.holder, lease.term) == (f"beat-{i}", term)
        assert isinstance(term, int)
        terms.append(term)
    # The term never goes back, and grows whenever the holder changes.
    assert terms == sorted(terms)
    assert terms[0] == 1
