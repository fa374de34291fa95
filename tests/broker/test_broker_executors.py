"""Conformance of heartbeats, stale executors, orphans and the queue registry."""

from __future__ import annotations

from typing import Any

import msgspec

from taskflow.broker import Broker
from taskflow.models import ExecutorBeat, NewWorkflow, OrphanRef
from taskflow.status import Status

from .queueing import NOW, VERSION


def beat(executor_id: str, at: int, **changes: Any) -> ExecutorBeat:
    base = ExecutorBeat(
        executor_id=executor_id,
        kind="worker",
        name=f"taskflow@{executor_id}",
        hostname="host-1",
        pid=4242,
        app_version=VERSION,
        queues=["default", "emails"],
        concurrency=8,
        started_at=NOW,
        heartbeat_at=at,
    )
    return msgspec.structs.replace(base, **changes)


def running(
    broker: Broker, workflow_id: str, executor_id: str, *, parent_id: str | None = None
) -> None:
    """A PENDING workflow owned by ``executor_id``."""
    broker.start_workflow(
        NewWorkflow(
            id=workflow_id,
            name=f"wf.{workflow_id}",
            status=Status.PENDING,
            inputs="{}",
            executor_id=executor_id,
            app_version=VERSION,
            parent_id=parent_id,
            queue=None if parent_id else "default",
            created_at=NOW,
            started_at=NOW,
        ),
        NOW,
    )


# -- heartbeats ------------------------------------------------------------------------


def test_heartbeat_inserts_then_refreshes(broker: Broker) -> None:
    assert broker.list_executors() == []
    first = beat("exec-a", NOW)
    broker.heartbeat(first)
    assert broker.list_executors() == [first]

    refreshed = beat(
        "exec-a", NOW + 5_000, queues=["other"], concurrency=2, pid=7, app_version=None
    )
    broker.heartbeat(refreshed)
    assert broker.list_executors() == [refreshed]


def test_list_and_remove_executors(broker: Broker) -> None:
    a = beat("exec-a", NOW, kind="process", queues=[])
    b = beat("exec-b", NOW + 1, started_at=NOW + 1)
    broker.heartbeat(b)
    broker.heartbeat(a)
    assert broker.list_executors() == [a, b]  # oldest first
    broker.remove_executor("exec-a")
    assert broker.list_executors() == [b]
    broker.remove_executor("exec-a")  # a no-op now
    broker.remove_executor("never-existed")
    assert broker.list_executors() == [b]


def test_stale_executors_with_stale_and_missing_rows(broker: Broker) -> None:
    cutoff = NOW + 10_000
    broker.heartbeat(beat("fresh", cutoff))  # exactly at the cutoff: fresh
    broker.heartbeat(beat("stale", cutoff - 1))
    broker.heartbeat(beat("stale-idle", NOW))  # stale, but owns nothing
    for executor in ("fresh", "stale", "missing"):
        running(broker, f"wf-{executor}", executor)
        running(broker, f"wf-{executor}-2", executor)
    running(broker, "wf-done", "gone-and-done")
    broker.finish_workflow("wf-done", Status.SUCCESS, "null", None, NOW)

    assert sorted(broker.stale_executors(cutoff)) == [("missing", False), ("stale", True)]
    broker.heartbeat(beat("stale", cutoff))
    assert broker.stale_executors(cutoff) == [("missing", False)]


def test_stale_executors_none_when_nothing_runs(broker: Broker) -> None:
    broker.heartbeat(beat("old", NOW))
    assert broker.stale_executors(NOW + 1_000_000) == []


def test_orphans_with_their_parents_status(broker: Broker) -> None:
    running(broker, "parent", "dead")
    running(broker, "child", "dead", parent_id="parent")
    running(broker, "finished-parent", "other")
    broker.finish_workflow("finished-parent", Status.SUCCESS, "null", None, NOW)
    running(broker, "child-of-finished", "dead", parent_id="finished-parent")
    running(broker, "child-of-missing", "dead", parent_id="no-such-parent")
    running(broker, "someone-elses", "alive")
    broker.start_workflow(
        NewWorkflow(
            id="done",
            name="wf.done",
            status=Status.PENDING,
            inputs="{}",
            executor_id="dead",
            created_at=NOW,
            started_at=NOW,
        ),
        NOW,
    )
    broker.finish_workflow("done", Status.ERROR, None, "{}", NOW)

    by_id = {o.id: o for o in broker.orphans("dead")}
    assert by_id == {
        "parent": OrphanRef("parent", "wf.parent", "dead", "default", None, None),
        "child": OrphanRef("child", "wf.child", "dead", None, "parent", Status.PENDING),
        "child-of-finished": OrphanRef(
            "child-of-finished",
            "wf.child-of-finished",
            "dead",
            None,
            "finished-parent",
            Status.SUCCESS,
        ),
        "child-of-missing": OrphanRef(
            "child-of-missing", "wf.child-of-missing", "dead", None, "no-such-parent", None
        ),
    }
    assert broker.orphans("nobody") == []


# -- queue registry --------------------------------------------------------------------


def test_register_and_known_queues(broker: Broker) -> None:
    assert broker.known_queues() == set()
    broker.register_queues(["emails", "default", "emails"], NOW)
    assert broker.known_queues() == {"emails", "default"}
    broker.register_queues(["reports", "default"], NOW + 1)
    assert broker.known_queues() == {"emails", "default", "reports"}
    broker.register_queues([], NOW + 2)
    assert broker.known_queues() == {"emails", "default", "reports"}
