"""Conformance of ``Broker.debounce`` on both dialects: the first call, pushing back, the last
arguments winning, the timeout cap, new cycles, and concurrent producers of one key.

Time is the ``now`` each call passes: nothing here sleeps.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from taskflow.broker import Broker
from taskflow.broker.base import DebounceResult
from taskflow.models import NewWorkflow
from taskflow.status import Status

from .queueing import EXECUTOR, NOW, claim_all, stored

NAME = "digest.send"


def call(
    workflow_id: str,
    arg: object = 1,
    *,
    name: str = NAME,
    queue: str | None = "default",
    created_at: int = NOW,
    user: str | None = None,
    priority: int | None = None,
    timeout_ms: int | None = None,
) -> NewWorkflow:
    """The workflow a debounce call would write for a new cycle."""
    return NewWorkflow(
        id=workflow_id,
        name=name,
        status=Status.DELAYED,
        inputs=f'{{"args":[{arg}],"kwargs":{{}}}}',
        queue=queue,
        user=user,
        priority=priority,
        created_at=created_at,
        timeout_ms=timeout_ms,
    )


def debounce(
    broker: Broker,
    workflow_id: str,
    arg: object,
    now: int,
    *,
    delay_ms: int = 5_000,
    max_wait_ms: int | None = None,
    key: str = "user-7",
    name: str = NAME,
) -> DebounceResult:
    return broker.debounce(
        call(workflow_id, arg, name=name, created_at=now), key, delay_ms, max_wait_ms, now
    )


def debounce_rows(database_url: str) -> list[tuple[Any, ...]]:
    """``(workflow_name, debounce_key, workflow_id, first_at, updated_at)`` of every row, read
    with a plain driver."""
    query = (
        "SELECT workflow_name, debounce_key, workflow_id, first_at, updated_at FROM {} "
        "ORDER BY workflow_name, debounce_key"
    )
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return [tuple(r) for r in conn.execute(query.format("debounces")).fetchall()]
    with psycopg.connect(database_url, autocommit=True) as pg:
        return [tuple(r) for r in pg.execute(query.format("taskflow.debounces")).fetchall()]


def delete_workflow(database_url: str, workflow_id: str) -> None:
    """Remove a workflow row as retention would."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("DELETE FROM workflows WHERE id = ?", (workflow_id,))
            conn.commit()
        return
    with psycopg.connect(database_url, autocommit=True) as pg:
        pg.execute("DELETE FROM taskflow.workflows WHERE id = %s", (workflow_id,))


# -- one cycle ------------------------------------------------------------------------------


def test_first_call_writes_a_delayed_workflow_and_the_key_row(
    broker: Broker, database_url: str
) -> None:
    new = call("d-1", 1, user="ann", priority=4, timeout_ms=90_000)
    result = broker.debounce(new, "user-7", 5_000, None, NOW)
    assert result == DebounceResult(
        workflow_id="d-1",
        created=True,
        pushed=False,
        status=Status.DELAYED,
        delay_until=NOW + 5_000,
    )
    row = stored(broker, "d-1")
    # Exactly what an enqueue with a countdown writes.
    assert (row.name, row.status, row.queue, row.inputs) == (
        NAME,
        Status.DELAYED,
        "default",
        '{"args":[1],"kwargs":{}}',
    )
    assert (row.delay_until, row.created_at, row.attempts, row.started_at) == (
        NOW + 5_000,
        NOW,
        0,
        None,
    )
    assert (row.user, row.priority, row.timeout_ms, row.executor_id) == ("ann", 4, 90_000, None)
    assert (row.app_version, row.deadline_at, row.expires_at, row.dedup_id) == (
        None,
        None,
        None,
        None,
    )
    assert debounce_rows(database_url) == [(NAME, "user-7", "d-1", NOW, NOW)]


def test_a_queue_of_none_is_the_default_queue(broker: Broker) -> None:
    broker.debounce(call("d-1", queue=None), "k", 1_000, None, NOW)
    assert stored(broker, "d-1").queue == "default"


def test_later_calls_push_back_and_the_last_arguments_win(
    broker: Broker, database_url: str
) -> None:
    first = debounce(broker, "d-1", 1, NOW)
    second = debounce(broker, "d-2", 2, NOW + 1_000)
    third = debounce(broker, "d-3", 3, NOW + 4_000, delay_ms=10_000)
    assert (first.workflow_id, second.workflow_id, third.workflow_id) == ("d-1",) * 3
    assert (second.created, second.pushed) == (False, True)
    assert (second.status, second.delay_until) == (Status.DELAYED, NOW + 6_000)
    assert third.delay_until == NOW + 14_000
    row = stored(broker, "d-1")
    assert (row.status, row.delay_until, row.inputs) == (
        Status.DELAYED,
        NOW + 14_000,
        '{"args":[3],"kwargs":{}}',
    )
    # Nothing else was written, and the cycle still counts from the first call.
    assert broker.get_workflow("d-2") is None and broker.get_workflow("d-3") is None
    assert debounce_rows(database_url) == [(NAME, "user-7", "d-1", NOW, NOW + 4_000)]


def test_a_shorter_delay_brings_the_start_forward(broker: Broker) -> None:
    debounce(broker, "d-1", 1, NOW, delay_ms=60_000)
    result = debounce(broker, "d-2", 2, NOW + 1_000, delay_ms=500)
    assert (result.workflow_id, result.delay_until) == ("d-1", NOW + 1_500)


def test_pushing_back_keeps_what_the_first_call_set(broker: Broker) -> None:
    broker.debounce(call("d-1", 1, user="ann", priority=4), "k", 5_000, None, NOW)
    broker.debounce(call("d-2", 2, user="bob", priority=9), "k", 5_000, None, NOW + 10)
    row = stored(broker, "d-1")
    assert (row.user, row.priority, row.created_at, row.inputs) == (
        "ann",
        4,
        NOW,
        '{"args":[2],"kwargs":{}}',
    )


def test_timeout_caps_the_wait_from_the_first_call(broker: Broker) -> None:
    cap = 3_000
    first = debounce(broker, "d-1", 1, NOW, delay_ms=2_000, max_wait_ms=cap)
    assert first.delay_until == NOW + 2_000
    second = debounce(broker, "d-2", 2, NOW + 1_500, delay_ms=2_000, max_wait_ms=cap)
    assert (second.workflow_id, second.delay_until) == ("d-1", NOW + cap)
    assert second.status is Status.DELAYED
    # Past the cap: the last arguments are taken and the workflow is runnable at once.
    third = debounce(broker, "d-3", 3, NOW + 3_500, delay_ms=2_000, max_wait_ms=cap)
    assert (third.workflow_id, third.pushed, third.status) == ("d-1", True, Status.ENQUEUED)
    row = stored(broker, "d-1")
    assert (row.status, row.delay_until, row.inputs) == (
        Status.ENQUEUED,
        NOW + cap,
        '{"args":[3],"kwargs":{}}',
    )


def test_timeout_caps_the_first_call_too(broker: Broker) -> None:
    result = debounce(broker, "d-1", 1, NOW, delay_ms=60_000, max_wait_ms=3_000)
    assert result.delay_until == NOW + 3_000


def test_without_timeout_the_start_can_be_pushed_back_indefinitely(broker: Broker) -> None:
    for i in range(1, 6):
        result = debounce(broker, f"d-{i}", i, NOW + i * 4_000, delay_ms=5_000)
        assert (result.workflow_id, result.delay_until) == ("d-1", NOW + i * 4_000 + 5_000)


def test_a_zero_delay_enqueues_at_once_and_ends_the_cycle(broker: Broker) -> None:
    now = debounce(broker, "d-1", 1, NOW, delay_ms=0)
    assert (now.created, now.status, now.delay_until) == (True, Status.ENQUEUED, NOW)
    assert stored(broker, "d-1").status is Status.ENQUEUED
    # ENQUEUED has "started" as far as debouncing goes: the next call is a new cycle.
    again = debounce(broker, "d-2", 2, NOW + 1)
    assert (again.workflow_id, again.created) == ("d-2", True)


def test_keys_are_per_workflow_name(broker: Broker, database_url: str) -> None:
    a = debounce(broker, "a-1", 1, NOW, key="k1")
    b = debounce(broker, "b-1", 1, NOW, key="k2")
    c = debounce(broker, "c-1", 1, NOW, key="k1", name="other.flow")
    assert [r.workflow_id for r in (a, b, c)] == ["a-1", "b-1", "c-1"]
    assert debounce(broker, "x", 2, NOW + 1, key="k1").workflow_id == "a-1"
    assert debounce(broker, "y", 2, NOW + 1, key="k1", name="other.flow").workflow_id == "c-1"
    assert stored(broker, "b-1").inputs == '{"args":[1],"kwargs":{}}'
    assert [r[:3] for r in debounce_rows(database_url)] == [
        (NAME, "k1", "a-1"),
        (NAME, "k2", "b-1"),
        ("other.flow", "k1", "c-1"),
    ]


# -- new cycles -----------------------------------------------------------------------------


def test_once_due_the_tick_runs_it_with_the_last_arguments(broker: Broker) -> None:
    debounce(broker, "d-1", 1, NOW)
    debounce(broker, "d-2", 2, NOW + 1_000)
    assert broker.tick(NOW + 5_999).promoted == 0
    assert broker.tick(NOW + 6_000).promoted == 1
    claimed = claim_all(broker, now=NOW + 6_000)
    assert [(r.id, r.inputs) for r in claimed] == [("d-1", '{"args":[2],"kwargs":{}}')]


@pytest.mark.parametrize("stage", ["enqueued", "pending", "finished", "cancelled", "deleted"])
def test_a_call_after_the_start_begins_a_new_cycle(
    broker: Broker, database_url: str, stage: str
) -> None:
    debounce(broker, "d-1", 1, NOW, max_wait_ms=20_000)
    later = NOW + 10_000
    assert broker.tick(later).promoted == 1
    if stage in ("pending", "finished"):
        assert [r.id for r in claim_all(broker, now=later)] == ["d-1"]
    if stage == "finished":
        assert broker.finish_workflow("d-1", Status.SUCCESS, '"ok"', None, later)
    elif stage == "cancelled":
        assert broker.cancel(["d-1"], later) == ["d-1"]
    elif stage == "deleted":
        delete_workflow(database_url, "d-1")
    before = broker.get_workflow("d-1")
    result = debounce(broker, "d-2", 2, later + 1, max_wait_ms=20_000)
    assert (result.workflow_id, result.created, result.pushed) == ("d-2", True, False)
    assert (result.status, result.delay_until) == (Status.DELAYED, later + 1 + 5_000)
    # The started workflow is left alone; the cycle (and its cap) counts from this call.
    assert broker.get_workflow("d-1") == before
    assert debounce_rows(database_url) == [(NAME, "user-7", "d-2", later + 1, later + 1)]
    capped = debounce(broker, "d-3", 3, later + 19_000, max_wait_ms=20_000)
    assert (capped.workflow_id, capped.delay_until) == ("d-2", later + 1 + 20_000)


def test_a_delayed_retry_of_a_started_workflow_is_not_pushed_back(broker: Broker) -> None:
    debounce(broker, "d-1", 1, NOW, delay_ms=0)
    assert [r.id for r in claim_all(broker)] == ["d-1"]
    # A workflow-level retry makes the started workflow DELAYED again: not a waiting one.
    assert broker.retry_later("d-1", EXECUTOR, NOW + 60_000, None, NOW)
    assert stored(broker, "d-1").status is Status.DELAYED
    result = debounce(broker, "d-2", 2, NOW + 1)
    assert (result.workflow_id, result.created) == ("d-2", True)
    row = stored(broker, "d-1")
    assert (row.inputs, row.delay_until) == ('{"args":[1],"kwargs":{}}', NOW + 60_000)


def test_a_new_cycle_whose_id_exists_writes_nothing(broker: Broker, database_url: str) -> None:
    # A caller replaying after a crash passes the id it passed before.
    first = debounce(broker, "d-1", 1, NOW, delay_ms=0)
    assert [r.id for r in claim_all(broker)] == ["d-1"]
    assert broker.finish_workflow("d-1", Status.SUCCESS, '"ok"', None, NOW)
    again = debounce(broker, "d-1", 1, NOW + 5)
    assert first.created
    assert again == DebounceResult(workflow_id="d-1", created=False, pushed=False)
    assert stored(broker, "d-1").status is Status.SUCCESS
    assert debounce_rows(database_url)[0][2] == "d-1"


# -- concurrency ----------------------------------------------------------------------------

THREADS = 8
ROUNDS = 5


def test_concurrent_producers_of_one_key_leave_one_waiting_workflow(
    make_broker: Callable[[], Broker], broker: Broker, database_url: str
) -> None:
    brokers = [make_broker() for _ in range(THREADS)]
    for b in brokers:
        assert b.get_status("none") is None  # connect before the race
    barrier = threading.Barrier(THREADS, timeout=30)
    results: list[list[DebounceResult]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def produce(i: int) -> None:
        try:
            for r in range(ROUNDS):
                barrier.wait()
                now = NOW + r * 100 + i
                results[i].append(debounce(brokers[i], f"d-{r}-{i}", i * 10 + r, now))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    flat = [r for rs in results for r in rs]
    ids = {r.workflow_id for r in flat}
    assert len(ids) == 1, ids
    (winner,) = ids
    assert sum(r.created for r in flat) == 1
    assert sum(r.pushed for r in flat) == THREADS * ROUNDS - 1
    every = {f"d-{r}-{i}" for r in range(ROUNDS) for i in range(THREADS)}
    assert [i for i in every if broker.get_workflow(i) is not None] == [winner]
    row = stored(broker, winner)
    assert row.status is Status.DELAYED
    # Whoever committed last set the inputs; they are one call's, whole.
    assert row.inputs in {f'{{"args":[{i * 10 + r}],"kwargs":{{}}}}' for r, i in _calls()}
    assert [r[2] for r in debounce_rows(database_url)] == [winner]


def _calls() -> list[tuple[int, int]]:
    return [(r, i) for r in range(ROUNDS) for i in range(THREADS)]


def test_concurrent_producers_and_a_promoting_tick_never_leave_two_waiting(
    make_broker: Callable[[], Broker], broker: Broker
) -> None:
    # Each round the due workflow is promoted while producers push: whichever wins, each
    # round ends with at most one workflow still waiting to start and never two DELAYED.
    brokers = [make_broker() for _ in range(THREADS)]
    ticker = make_broker()
    for b in [*brokers, ticker]:
        assert b.get_status("none") is None
    created: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    for r in range(ROUNDS):
        now = NOW + r * 10_000
        barrier = threading.Barrier(THREADS + 1, timeout=30)

        def produce(i: int, now: int = now, r: int = r, barrier: Any = barrier) -> None:
            try:
                barrier.wait()
                res = debounce(brokers[i], f"d-{r}-{i}", i, now, delay_ms=1_000)
                with lock:
                    created.append(res.workflow_id)
            except BaseException as exc:
                errors.append(exc)

        def tick(now: int = now, barrier: Any = barrier) -> None:
            try:
                barrier.wait()
                ticker.tick(now)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=produce, args=(i,)) for i in range(THREADS)]
        threads.append(threading.Thread(target=tick))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        # Every call leaves a start 1 s ahead, which this round's tick cannot promote: one
        # workflow waits, whoever won against the tick.
        delayed = [i for i in set(created) if stored(broker, i).status is Status.DELAYED]
        assert len(delayed) == 1, delayed
    # Each round's tick found the previous round's workflow due: pushed back, or promoted
    # and replaced by a new cycle; nothing else.
    assert len(set(created)) <= ROUNDS
