"""Conformance of what ``taskflow status`` / ``taskflow inspect`` read: the pool and registered
workflows of a heartbeat, running workflows per executor, DELAYED workflows in wake order,
and finished counts per executor, on Postgres and SQLite."""

from __future__ import annotations

import msgspec

from taskflow.broker import Broker
from taskflow.models import DelayedRef, ExecutorBeat, RunningRef, Wait
from taskflow.status import Status

from .queueing import NOW, VERSION, queued


def beat(executor_id: str, **changes: object) -> ExecutorBeat:
    base = ExecutorBeat(
        executor_id=executor_id,
        kind="worker",
        name=f"taskflow@{executor_id}",
        hostname="host-1",
        pid=4242,
        app_version=VERSION,
        queues=["default"],
        concurrency=4,
        started_at=NOW,
        heartbeat_at=NOW,
        pool="prefork",
        workflows=["orders.process", "orders.ship"],
    )
    return msgspec.structs.replace(base, **changes)


def claim(broker: Broker, executor_id: str, *ids: str, now: int = NOW, name: str = "wf") -> None:
    """Enqueue ``ids`` on queue ``q-<executor>`` and claim them all for ``executor_id``."""
    queue = f"q-{executor_id}"
    broker.enqueue([queued(i, queue=queue, name=name) for i in ids], now)
    claimed = broker.claim(executor_id, [queue], VERSION, len(ids), now)
    assert sorted(r.id for r in claimed) == sorted(ids)


# -- heartbeats carry the pool and the registered workflows -------------------------------------
def test_heartbeat_records_pool_and_registered_workflows(broker: Broker) -> None:
    first = beat("exec-a")
    broker.heartbeat(first)
    assert broker.list_executors() == [first]
    # Every beat rewrites both: a worker restarted with other code shows its new registry.
    refreshed = beat("exec-a", heartbeat_at=NOW + 2_000, pool="threads", workflows=["other"])
    broker.heartbeat(refreshed)
    assert broker.list_executors() == [refreshed]


def test_a_process_records_no_pool_and_no_registry(broker: Broker) -> None:
    process = beat("proc-a", kind="process", queues=[], pool=None, workflows=None)
    empty = beat("exec-b", started_at=NOW + 1, workflows=[])
    broker.heartbeat(process)
    broker.heartbeat(empty)
    assert broker.list_executors() == [process, empty]
    [listed, _] = broker.list_executors()
    assert (listed.pool, listed.workflows) == (None, None)


# -- running workflows ----------------------------------------------------------------------------
def test_running_by_executor_counts_pending_workflows_by_owner_and_name(broker: Broker) -> None:
    assert broker.running_by_executor() == {}
    claim(broker, "exec-a", "a1", "a2", name="orders.process")
    claim(broker, "exec-a", "a3", name="orders.ship")
    claim(broker, "exec-b", "b1", "b2", name="orders.process")
    broker.enqueue([queued("waiting", queue="q-exec-a")], NOW)  # ENQUEUED: not running
    broker.finish_workflow("b2", Status.SUCCESS, "null", None, NOW + 5)  # finished: not running
    assert broker.running_by_executor() == {
        "exec-a": {"orders.process": 2, "orders.ship": 1},
        "exec-b": {"orders.process": 1},
    }


def test_list_running_by_owner_then_start_without_payloads(broker: Broker) -> None:
    claim(broker, "exec-b", "b-late", now=NOW + 20)
    claim(broker, "exec-a", "a-late", now=NOW + 10)
    claim(broker, "exec-a", "a-early", now=NOW)
    broker.enqueue([queued("parked", queue="q-exec-a")], NOW)
    broker.claim("exec-a", ["q-exec-a"], VERSION, 1, NOW)
    broker.park("parked", "exec-a", Wait(kind="sleep", until=NOW + 60_000), NOW)  # not running
    expected = [
        RunningRef(
            id="a-early",
            name="wf",
            executor_id="exec-a",
            queue="q-exec-a",
            started_at=NOW,
            attempts=1,
        ),
        RunningRef(
            id="a-late",
            name="wf",
            executor_id="exec-a",
            queue="q-exec-a",
            started_at=NOW + 10,
            attempts=1,
        ),
        RunningRef(
            id="b-late",
            name="wf",
            executor_id="exec-b",
            queue="q-exec-b",
            started_at=NOW + 20,
            attempts=1,
        ),
    ]
    assert broker.list_running(10) == expected
    assert broker.list_running(2) == expected[:2]


# -- DELAYED workflows ----------------------------------------------------------------------------
def test_list_delayed_in_wake_order_with_what_each_waits_for(broker: Broker) -> None:
    broker.enqueue(
        [
            queued("later", delay_until=NOW + 60_000),
            queued("sooner", delay_until=NOW + 1_000, queue="emails", name="mail.send"),
            queued("now", delay_until=None),  # ENQUEUED: not listed
        ],
        NOW,
    )
    # A parked recv without a timeout wakes only when its message comes: listed last.
    claim(broker, "exec-a", "inbox")
    recv = Wait(kind="recv", until=None, wait_on="inbox", wait_key="t")
    assert broker.park("inbox", "exec-a", recv, NOW) is Status.DELAYED
    # A workflow-level retry counts in retries.
    claim(broker, "exec-a", "flaky", now=NOW + 1)
    assert broker.retry_later("flaky", "exec-a", NOW + 30_000, None, NOW)

    rows = broker.list_delayed(10)
    assert [r.id for r in rows] == ["sooner", "flaky", "later", "inbox"]
    by_id = {r.id: r for r in rows}
    assert by_id["sooner"] == DelayedRef(
        id="sooner",
        name="mail.send",
        queue="emails",
        delay_until=NOW + 1_000,
        wait_kind=None,
        wait_on=None,
        wait_key=None,
        retries=0,
        created_at=NOW,
    )
    assert (by_id["inbox"].delay_until, by_id["inbox"].wait_kind) == (None, "recv")
    assert (by_id["inbox"].wait_on, by_id["inbox"].wait_key) == ("inbox", "t")
    assert (by_id["flaky"].retries, by_id["flaky"].wait_kind) == (1, None)

    assert [r.id for r in broker.list_delayed(2)] == ["sooner", "flaky"]
    assert [r.id for r in broker.list_delayed(10, "emails")] == ["sooner"]
    assert [r.id for r in broker.list_delayed(10, "q-exec-a")] == ["flaky", "inbox"]
    assert broker.list_delayed(10, "no-such-queue") == []


# -- finished counts ----------------------------------------------------------------------------
def test_finished_by_executor_counts_each_status_since_a_time(broker: Broker) -> None:
    claim(broker, "exec-a", "old", "ok1", "ok2", "bad", "stopped", "running")
    claim(broker, "exec-b", "b-ok")
    broker.finish_workflow("old", Status.SUCCESS, "null", None, NOW + 100)  # before the window
    broker.finish_workflow("ok1", Status.SUCCESS, "null", None, NOW + 1_000)
    broker.finish_workflow("ok2", Status.SUCCESS, "null", None, NOW + 2_000)
    broker.finish_workflow("bad", Status.ERROR, None, '{"type_name": "E"}', NOW + 1_000)
    assert broker.cancel(["stopped"], NOW + 1_500) == ["stopped"]  # keeps its executor
    broker.finish_workflow("b-ok", Status.SUCCESS, "null", None, NOW + 1_000)
    assert broker.finished_by_executor(NOW + 1_000) == {
        "exec-a": {Status.SUCCESS: 2, Status.ERROR: 1, Status.CANCELLED: 1},
        "exec-b": {Status.SUCCESS: 1},
    }
    assert broker.finished_by_executor(NOW + 1_001) == {
        "exec-a": {Status.SUCCESS: 1, Status.CANCELLED: 1}
    }
    assert broker.finished_by_executor(NOW + 3_000) == {}
    # A workflow cancelled before any executor took it counts for nobody.
    broker.enqueue([queued("never-ran")], NOW)
    broker.cancel(["never-ran"], NOW + 2_500)
    assert broker.finished_by_executor(NOW + 2_500) == {}
