"""The ``Client`` and the app's management methods in this process, on both dialects: option
and filter checks, messages, events, streams, delays and debouncing by name, and forks that
the app runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from taskflow import (
    Client,
    ConfigurationError,
    SerializationError,
    Status,
    Taskflow,
    UnknownQueueError,
    UnknownWorkflowError,
    WorkflowConflictError,
    WorkflowDeduplicatedError,
)
from taskflow.clock import now_ms
from taskflow.execution import WorkerMode
from taskflow.queues import Queue

from .helpers import PROCESS_LIMIT


@pytest.fixture
def client(database_url: str) -> Iterator[Client]:
    with Client(database_url) as c:
        yield c


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"status": "DONE"}, "unknown status 'DONE'"),
        ({"status": ["ERROR", 3]}, "unknown status 3"),
        ({"status": []}, "empty list"),
        ({"name": ""}, "name must be a non-empty string"),
        ({"queue": 7}, "queue must be a non-empty string"),
        ({"start": "yesterday"}, "start must be a datetime"),
        ({"start": datetime(2025, 1, 2), "end": datetime(2025, 1, 1)}, "must be before end"),
        ({"limit": 0}, "limit must be an integer >= 1, got 0"),
        ({"limit": True}, "limit must be an integer"),
        ({"offset": -1}, "offset must be an integer >= 0"),
        ({"newest_first": "no"}, "newest_first must be True or False"),
    ],
)
def test_bad_filters_are_refused_before_the_database_is_touched(
    tmp_path: Path, filters: dict[str, Any], message: str
) -> None:
    path = tmp_path / "never.sqlite3"
    with (
        Client(f"sqlite:///{path}") as c,
        pytest.raises(ConfigurationError, match=message),
    ):
        c.list_workflows(**filters)
    assert not path.exists()


def test_client_checks_enqueue_options_like_apply_async(
    client: Client, make_app: Callable[..., Taskflow]
) -> None:
    app = make_app()
    app.broker.declare_queues([Queue("per-user", partitioned=True)], "v1", 1)
    with pytest.raises(UnknownQueueError, match="'nowhere'"):
        client.enqueue("wf.any", queue="nowhere")
    with pytest.raises(ConfigurationError, match="is partitioned: give partition_key"):
        client.enqueue("wf.any", queue="per-user")
    with pytest.raises(ConfigurationError, match="is not partitioned"):
        client.enqueue("wf.any", partition_key="user-1")
    with pytest.raises(ConfigurationError, match="priority"):
        client.enqueue("wf.any", priority=0)
    with pytest.raises(ConfigurationError, match="registered name"):
        client.enqueue("")
    with pytest.raises(SerializationError, match=r"\*args\[1\]"):
        client.enqueue("wf.any", args=(1, object()))
    assert client.list_workflows() == []

    keyed = client.enqueue("wf.any", ("a",), queue="per-user", partition_key="user-1")
    assert keyed.status is Status.ENQUEUED
    later = client.enqueue("wf.any", kwargs={"x": 1}, countdown=60, user="u", workflow_id="w-1")
    assert later.info().status is Status.DELAYED and later.info().user == "u"
    assert client.enqueue("wf.any", task_id="w-1").id == "w-1"  # idempotent by id
    with pytest.raises(WorkflowConflictError, match=r"'wf\.other'"):
        client.enqueue("wf.other", workflow_id="w-1")
    first = client.enqueue("wf.any", dedup_id="d")
    with pytest.raises(WorkflowDeduplicatedError):
        client.enqueue("wf.any", dedup_id="d")
    assert client.enqueue("wf.any", dedup_id="d", dedup_policy="return_existing").id == first.id
    (row,) = client.list_workflows(user="u", load_inputs=True)
    assert row.inputs == {"args": [], "kwargs": {"x": 1}}

    client.set_delay("w-1", seconds=0)
    assert later.status is Status.ENQUEUED
    assert client.cancel("w-1", "nope") == ["w-1"]
    assert [h.id for h in client.resume("w-1")] == ["w-1"]
    with pytest.raises(UnknownWorkflowError, match="'nope'"):
        client.retrieve("nope")


def test_client_talks_to_a_running_workflow(
    client: Client, make_app: Callable[..., Taskflow]
) -> None:
    import taskflow

    app = make_app()

    @app.workflow(name="wf.chat")
    def chat() -> str:
        taskflow.set_event("stage", "waiting")
        message = taskflow.recv("go", timeout=PROCESS_LIMIT)
        taskflow.write_stream("log", {"got": message})
        taskflow.close_stream("log")
        return f"done {message}"

    out: list[Any] = []
    runner = threading.Thread(target=lambda: out.append(chat.apply(workflow_id="chat-1").get()))
    runner.start()
    try:
        assert client.get_event("chat-1", "stage", timeout=PROCESS_LIMIT) == "waiting"
        client.send("chat-1", "hello", topic="go", idempotency_key="k")
        client.send("chat-1", "again", topic="go", idempotency_key="k")  # not sent twice
        assert list(client.read_stream("chat-1", "log", timeout=PROCESS_LIMIT)) == [
            {"got": "hello"}
        ]
    finally:
        runner.join(PROCESS_LIMIT)
    assert out == ["done hello"]
    assert client.retrieve("chat-1").get(timeout=PROCESS_LIMIT) == "done hello"
    with pytest.raises(UnknownWorkflowError):
        client.send("nope", 1)


def test_client_debounces_by_name(client: Client) -> None:
    debouncer = client.debouncer("wf.report", timeout=3600)
    first = debouncer.debounce("k", 60, 1)
    second = debouncer.debounce("k", 60, 2)
    assert first.id == second.id and first.status is Status.DELAYED
    (row,) = client.list_workflows(name="wf.report", load_inputs=True)
    assert row.inputs == {"args": [2], "kwargs": {}}
    with pytest.raises(UnknownQueueError):
        client.debouncer("wf.report", queue="nowhere").debounce("k", 1)


def test_the_app_lists_forks_and_runs_the_fork(make_app: Callable[..., Taskflow]) -> None:
    app = make_app(app_version="v1")
    calls: list[int] = []

    @app.step(name="count")
    def count(x: int) -> int:
        calls.append(x)
        return x

    @app.workflow(name="wf.sum")
    def total(n: int) -> dict[str, int]:
        return {"sum": sum(count(i) for i in range(n))}

    done = total.apply(args=(3,), workflow_id="sum-1")
    assert done.get() == {"sum": 3} and calls == [0, 1, 2]
    [info] = app.list_workflows(name="wf.sum", load_outputs=True)
    assert info.output == {"sum": 3} and info.inputs is None
    assert [s.name for s in app.steps("sum-1")] == ["count"] * 3

    forked = app.fork("sum-1", 2, new_id="sum-fork")
    assert forked.id == "sum-fork" and forked.status is Status.ENQUEUED
    assert app.fork("sum-1", 2, new_id="sum-fork").id == "sum-fork"  # idempotent
    # Run the fork here, as a worker would: only the step from start_step runs again, and
    # the handle decodes the result as the registered workflow does.
    now = now_ms(app.clock)
    [row] = app.broker.claim(app.executor_id, ["default"], app.app_version, 10, now)
    app.run_claimed(row, WorkerMode(executor_id=app.executor_id, defer_finish=False))
    assert forked.get(timeout=PROCESS_LIMIT) == {"sum": 3}
    assert calls == [0, 1, 2, 2]

    with pytest.raises(ConfigurationError, match="start_step"):
        app.fork("sum-1", -1)
    with pytest.raises(UnknownWorkflowError, match="'nope'"):
        app.fork("nope", 0)
    with pytest.raises(UnknownQueueError):
        app.fork("sum-1", 0, queue="nowhere")
    app.queue("keyed", partitioned=True)
    app.broker.declare_queues(list(app.queues.values()), "v1", 1)
    with pytest.raises(ConfigurationError, match="partitioned"):
        app.fork("sum-1", 0, queue="keyed")
    with pytest.raises(ConfigurationError, match="no app version 'v9'"):
        app.set_latest_version("v9")
    latest = app.latest_version()
    assert latest is not None and latest.version == "v1"
    assert [v.version for v in app.list_versions()] == ["v1"]
    start = datetime.now(UTC) - timedelta(hours=1)
    assert {w.id for w in app.list_workflows(start=start)} == {"sum-1", "sum-fork"}
