"""Producers without a worker, on both dialects: what ``delay``/``apply_async``/``delay_many``
write, the rules of their options, unknown queues, eager mode, and workflow-level retries
of direct calls (the worker side is in test_worker_*.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import taskflow
from taskflow import (
    ConfigurationError,
    Retry,
    Status,
    Taskflow,
    UnknownQueueError,
    WorkflowConflictError,
    WorkflowDeduplicatedError,
)
from taskflow.clock import now_ms

from .helpers import FakeClock, workflow_ids


class Flaky(Exception):
    """Raised by a step until it has failed enough times."""


def test_delay_writes_an_enqueued_row_and_returns_its_handle(app: Taskflow) -> None:
    @app.workflow(name="double")
    def double(x: int) -> int:
        return x * 2

    h = double.delay(21)
    assert h.status is Status.ENQUEUED
    info = h.info()
    assert (info.name, info.queue, info.attempts, info.started_at) == ("double", "default", 0, None)
    with pytest.raises(TimeoutError):
        h.get(timeout=0.05)


def test_apply_async_options_are_stored(app: Taskflow) -> None:
    app.queue("emails")

    @app.workflow(name="send")
    def send(to: str) -> None: ...

    h = send.apply_async(("a@b",), workflow_id="mail-1", queue="emails", priority=5, user="ann")
    assert h.id == "mail-1"
    row = app.broker.get_workflow("mail-1")
    assert row is not None
    assert (row.queue, row.priority, row.user, row.status) == ("emails", 5, "ann", Status.ENQUEUED)
    # The id is an idempotency key: the same id returns the same workflow, writing nothing.
    again = send.apply_async(("other",), workflow_id="mail-1", queue="emails")
    assert again.id == "mail-1"
    assert app.broker.get_workflow("mail-1") == row


def test_countdown_eta_and_expires(make_app: Callable[..., Taskflow]) -> None:
    clock = FakeClock()
    app = make_app(clock=clock)

    @app.workflow(name="later")
    def later() -> None: ...

    now = now_ms(clock)
    h = later.apply_async(countdown=30, expires=60)
    row = app.broker.get_workflow(h.id)
    assert row is not None
    assert row.status is Status.DELAYED
    assert (row.delay_until, row.expires_at) == (now + 30_000, now + 60_000)
    eta = datetime.fromtimestamp(clock.now(), tz=UTC) + timedelta(seconds=90)
    at = later.apply_async(eta=eta).info()
    assert at.status is Status.DELAYED
    # A naive eta is UTC, as in Celery.
    naive = later.apply_async(eta=eta.replace(tzinfo=None))
    assert app.broker.get_workflow(naive.id).delay_until == now + 90_000  # type: ignore[union-attr]
    # Due now: plain ENQUEUED.
    assert later.apply_async(countdown=0).status is Status.ENQUEUED


def test_delay_many_writes_every_call_in_order(app: Taskflow) -> None:
    @app.workflow(name="add")
    def add(a: int, b: int = 0) -> int:
        return a + b

    handles = add.delay_many([(1, 2), (3,), {"a": 5, "b": 6}])
    assert len({h.id for h in handles}) == 3
    assert all(h.status is Status.ENQUEUED for h in handles)
    with pytest.raises(ConfigurationError, match="tuple of arguments"):
        add.delay_many([7])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": 0}, "priority must be an integer from 1"),
        ({"priority": True}, "priority must be an integer from 1"),
        ({"priority": 2_147_483_648}, "priority must be an integer from 1"),
        ({"countdown": 5, "eta": datetime.now(UTC)}, "countdown or eta"),
        ({"countdown": "5"}, "countdown must be seconds"),
        ({"expires": -1}, "expires must be > 0"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"dedup_policy": "ignore", "dedup_id": "x"}, "dedup_policy"),
        ({"dedup_id": ""}, "dedup_id must be a non-empty string"),
        ({"partition_key": "user-1"}, "is not partitioned"),
        ({"workflow_id": "a", "task_id": "b"}, "disagree"),
    ],
)
def test_bad_options_fail_before_anything_is_written(
    app: Taskflow, options: dict[str, Any], message: str
) -> None:
    @app.workflow(name="wf")
    def wf() -> None: ...

    with pytest.raises(ConfigurationError, match=message):
        wf.apply_async(**options)
    assert workflow_ids(app.conf.resolved_database_url()) == []


def test_partitioned_queue_needs_a_key_and_refuses_dedup(app: Taskflow) -> None:
    app.queue("per-user", partitioned=True)

    @app.workflow(name="wf", queue="per-user")
    def wf() -> None: ...

    with pytest.raises(ConfigurationError, match="is partitioned"):
        wf.delay()
    with pytest.raises(ConfigurationError, match="cannot be used together"):
        wf.apply_async(partition_key="u1", dedup_id="d1")
    assert wf.apply_async(partition_key="u1").info().queue == "per-user"


def test_unknown_queue_is_refused_naming_it(app: Taskflow) -> None:
    @app.workflow(name="wf")
    def wf() -> None: ...

    with pytest.raises(UnknownQueueError, match="'nowhere'"):
        wf.apply_async(queue="nowhere")
    # A queue a worker recorded in the database is known even if this app never declared it.
    app.broker.register_queues(["recorded"], 0)
    assert wf.apply_async(queue="recorded").info().queue == "recorded"
    # Declared in the app, or named by a workflow: known.
    app.queue("declared")
    assert wf.apply_async(queue="declared").info().queue == "declared"

    @app.workflow(name="routed", queue="by-decorator")
    def routed() -> None: ...

    assert routed.delay().info().queue == "by-decorator"


def test_bad_queue_names_are_refused(app: Taskflow) -> None:
    with pytest.raises(ConfigurationError, match="queue"):

        @app.workflow(name="wf", queue="two words")
        def wf() -> None: ...

    with pytest.raises(ConfigurationError):
        app.queue("")
    app.queue("q", concurrency=2)
    with pytest.raises(ConfigurationError, match="already declared"):
        app.queue("q", concurrency=3)
    assert app.queue("q", concurrency=2).concurrency == 2


def test_dedup_rejects_or_returns_the_holder(app: Taskflow) -> None:
    @app.workflow(name="wf")
    def wf(n: int) -> None: ...

    first = wf.apply_async((1,), dedup_id="cart-7")
    with pytest.raises(WorkflowDeduplicatedError, match="cart-7"):
        wf.apply_async((2,), dedup_id="cart-7")
    same = wf.apply_async((3,), dedup_id="cart-7", dedup_policy="return_existing")
    assert same.id == first.id
    # Another queue has its own dedup space.
    app.queue("other")
    assert wf.apply_async((4,), dedup_id="cart-7", queue="other").id != first.id


def test_an_id_of_another_workflow_is_a_conflict(app: Taskflow) -> None:
    @app.workflow(name="one")
    def one() -> None: ...

    @app.workflow(name="two")
    def two() -> None: ...

    one.apply_async(workflow_id="shared-id")
    with pytest.raises(WorkflowConflictError, match="'one'"):
        two.apply_async(workflow_id="shared-id")


def test_unserializable_argument_writes_nothing(app: Taskflow) -> None:
    @app.workflow(name="wf")
    def wf(x: object) -> None: ...

    with pytest.raises(taskflow.SerializationError):
        wf.delay_many([(1,), (object(),)])
    assert workflow_ids(app.conf.resolved_database_url()) == []


def test_enqueue_inside_a_workflow_is_a_step_replayed_not_repeated(app: Taskflow) -> None:
    @app.workflow(name="child")
    def child(n: int) -> int:
        return n

    @app.workflow(name="parent")
    def parent() -> list[str]:
        return [child.delay(1).id, *(h.id for h in child.delay_many([(2,), (3,)]))]

    ids = parent.apply(workflow_id="p").get()
    assert ids == ["p-0", "p-1-0", "p-1-1"]
    assert [s.name for s in parent.apply(workflow_id="p").steps()] == [
        "child.apply_async",
        "child.apply_async",
    ]
    for child_id in ids:
        assert app.retrieve(child_id).info().parent_id == "p"


def test_task_always_eager_runs_inline(make_app: Callable[..., Taskflow]) -> None:
    app = make_app(task_always_eager=True)
    seen: list[bool] = []

    @app.task(bind=True, name="eager")
    def eager(self: Any, x: int) -> int:
        seen.append(self.request.is_eager)
        return x + 1

    h = eager.delay(1)
    assert h.status is Status.SUCCESS
    assert h.get() == 2
    assert seen == [True]


# -- workflow-level retries of direct calls ----------------------------------------------


def test_autoretry_runs_the_failed_step_again_and_keeps_completed_ones(
    make_app: Callable[..., Taskflow],
) -> None:
    clock = FakeClock()
    app = make_app(clock=clock)
    calls = {"first": 0, "flaky": 0}

    @app.step(name="first")
    def first() -> int:
        calls["first"] += 1
        return 1

    @app.step(name="flaky")
    def flaky() -> int:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise Flaky(calls["flaky"])
        return 2

    @app.workflow(name="retried", autoretry_for=(Flaky,), max_retries=5, retry_backoff=True)
    def retried() -> int:
        return first() + flaky()

    assert retried() == 3
    assert calls == {"first": 1, "flaky": 3}
    assert len(clock.sleeps) == 2  # two backoffs, on the injected clock


def test_autoretry_gives_up_after_max_retries(make_app: Callable[..., Taskflow]) -> None:
    app = make_app(clock=FakeClock())
    runs: list[int] = []

    @app.workflow(name="hopeless", autoretry_for=(Flaky,), max_retries=2, default_retry_delay=1)
    def hopeless() -> None:
        runs.append(1)
        raise Flaky("no")

    with pytest.raises(Flaky):
        hopeless()
    assert len(runs) == 3  # the first run and two retries


def test_bound_retry_and_a_raw_retry_both_respect_max_retries(
    make_app: Callable[..., Taskflow],
) -> None:
    clock = FakeClock()
    app = make_app(clock=clock)
    seen: list[int] = []

    @app.task(bind=True, name="bound", max_retries=2)
    def bound(self: Any) -> int:
        retries: int = self.request.retries
        seen.append(retries)
        if retries < 2:
            raise self.retry(countdown=7)
        return retries

    assert bound() == 2
    assert seen == [0, 1, 2]
    assert clock.sleeps == [7, 7]

    raw_runs: list[int] = []

    @app.task(name="raw", max_retries=1, default_retry_delay=3)
    def raw() -> None:
        raw_runs.append(1)
        raise Retry("again")

    with pytest.raises(Retry):
        raw()
    assert len(raw_runs) == 2


def test_retry_outside_a_workflow_is_a_clear_error(app: Taskflow) -> None:
    @app.task(bind=True, name="bound")
    def bound(self: Any) -> None:
        raise self.retry()

    with pytest.raises(ConfigurationError, match="outside a running workflow"):
        bound.retry()
    assert bound.request.called_directly


def test_autodiscover_accepts_one_package_name(
    app: Taskflow, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "discovered_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(
        "from taskflow.shared import current_app\n"
        "app = current_app()\n"
        "@app.task(name='discovered.task')\n"
        "def task() -> int:\n    return 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    taskflow.shared.set_current_app(app)
    try:
        app.autodiscover_tasks("discovered_pkg")
        assert "discovered.task" in app.workflows
    finally:
        for name in [m for m in sys.modules if m.startswith("discovered_pkg")]:
            del sys.modules[name]


def test_autodiscover_calls_a_callable_lazily(app: Taskflow) -> None:
    asked: list[bool] = []

    def packages() -> list[str]:
        asked.append(True)
        return []

    app.autodiscover_tasks(packages)
    assert asked == []
    app.finalize()
    assert asked == [True]
