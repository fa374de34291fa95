"""Helpers of the queue conformance tests (enqueue, claim, listeners)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from taskflow.broker import Broker
from taskflow.models import NewWorkflow, WorkflowRow
from taskflow.status import Status

NOW = 1_700_000_000_000
"""A fixed timestamp (ms): the broker takes time from its caller, never from the clock."""

EXECUTOR = "exec-a"
VERSION = "v1"


def queued(
    workflow_id: str,
    *,
    queue: str | None = "default",
    priority: int | None = None,
    created_at: int = NOW,
    app_version: str | None = None,
    dedup_id: str | None = None,
    partition_key: str | None = None,
    delay_until: int | None = None,
    expires_at: int | None = None,
    timeout_ms: int | None = None,
    inputs: str = '{"args":[],"kwargs":{}}',
    user: str | None = None,
    parent_id: str | None = None,
    name: str = "orders.process",
) -> NewWorkflow:
    """A workflow to enqueue."""
    return NewWorkflow(
        id=workflow_id,
        name=name,
        status=Status.ENQUEUED,
        inputs=inputs,
        queue=queue,
        app_version=app_version,
        user=user,
        parent_id=parent_id,
        priority=priority,
        partition_key=partition_key,
        dedup_id=dedup_id,
        created_at=created_at,
        timeout_ms=timeout_ms,
        delay_until=delay_until,
        expires_at=expires_at,
    )


def claim_all(
    broker: Broker,
    queues: tuple[str, ...] = ("default",),
    *,
    executor_id: str = EXECUTOR,
    app_version: str = VERSION,
    now: int = NOW,
    limit: int = 1_000,
) -> list[WorkflowRow]:
    """Claim until nothing is left (in batches of ``limit``)."""
    out: list[WorkflowRow] = []
    while batch := broker.claim(executor_id, list(queues), app_version, limit, now):
        out += batch
    return out


def stored(broker: Broker, workflow_id: str) -> WorkflowRow:
    """The stored row, which must exist."""
    row = broker.get_workflow(workflow_id)
    assert row is not None, workflow_id
    return row


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def race(n: int, fn: Callable[[int], object]) -> list[object]:
    """Run ``fn(i)`` in ``n`` threads released together; return the results in order."""
    barrier = threading.Barrier(n, timeout=30)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing thread did not finish"
    assert not errors, errors
    return results
