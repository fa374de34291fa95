"""Automatic retention (``result_expires``): a worker's :class:`Retention` driven by an
injected clock, in this process on both dialects, and a real ``taskflow worker`` removing
what it finished once it is old enough."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from taskflow import ConfigurationError, Status, Taskflow
from taskflow.broker.base import PruneResult
from taskflow.config import Config
from taskflow.retention import JITTER, Retention, settings

from . import retentionapp
from .helpers import FakeClock, Workers, wait_for, workflow_ids

DAY = 86_400.0


def test_workers_prune_what_finished_longer_ago_than_result_expires(
    make_app: Callable[..., Taskflow],
) -> None:
    clock = FakeClock()
    app = make_app(clock=clock, result_expires=timedelta(days=7), result_expires_interval=60)

    @app.step(name="s")
    def step(i: int) -> int:
        return i

    @app.workflow(name="wf.two_steps")
    def two_steps(i: int) -> int:
        return step(i) + step(i + 1)

    assert two_steps.apply(args=(1,), workflow_id="old").get() == 3
    clock.advance(6 * DAY)
    assert two_steps.apply(args=(2,), workflow_id="recent").get() == 5
    waiting = two_steps.apply_async(args=(3,), workflow_id="waiting")

    retention = Retention.from_conf(lambda: app.broker, clock, app.conf)
    assert retention is not None
    # The first pass comes within one interval (spread over workers started together).
    assert retention.next_due <= clock.monotonic() + 60
    clock.advance(60)
    assert retention.run_due() == PruneResult()  # nothing is 7 days old yet
    assert retention.run_due() is None  # not due again so soon
    assert retention.next_due >= clock.monotonic() + 60

    clock.advance(2 * DAY)  # "old" finished 8 days ago, "recent" 2 days ago
    done = retention.run_due()
    assert done is not None
    assert (done.workflows, done.steps) == (1, 2)
    assert app.broker.get_workflow("old") is None
    assert app.retrieve("recent").status is Status.SUCCESS
    assert waiting.status is Status.ENQUEUED  # however old, waiting work stays
    assert retention.total.workflows == 1

    clock.advance(60 * (1 + JITTER))
    assert retention.run_due() == PruneResult()
    clock.advance(5 * DAY)
    assert retention.run_due() == PruneResult(workflows=1, steps=2)
    assert app.broker.get_workflow("recent") is None
    # The id of a pruned workflow is free again.
    assert two_steps.apply(args=(4,), workflow_id="old").get() == 9


def test_result_expires_settings() -> None:
    assert Config().result_expires == timedelta(days=7)
    assert settings(Config()) == (7 * 86_400_000, 1000, 60.0)
    # Celery accepts seconds; None or 0 turns retention off.
    assert Config(result_expires=3600).result_expires_ms() == 3_600_000
    assert Config(result_expires=0.25).result_expires_ms() == 250
    assert Config(result_expires=None).result_expires_ms() is None
    assert Config(result_expires=0).result_expires_ms() is None
    assert Config(result_expires=timedelta(0)).result_expires_ms() is None
    off = Config(result_expires=None)
    assert Retention.from_conf(lambda: pytest.fail("no broker"), FakeClock(), off) is None
    cases: list[tuple[dict[str, Any], str]] = [
        ({"result_expires": "7d"}, "result_expires must be a timedelta.*'7d'"),
        ({"result_expires": True}, "result_expires must be a timedelta.*True"),
        ({"result_expires": timedelta(days=-1)}, "must not be negative"),
        ({"result_expires": float("nan")}, "must not be negative.*nan"),
        ({"result_expires_batch": 0}, "result_expires_batch .* got 0"),
        ({"result_expires_batch": 10.5}, "result_expires_batch .* got 10.5"),
        ({"result_expires_interval": 0}, "result_expires_interval .* got 0"),
        ({"result_expires_interval": "1m"}, "result_expires_interval .* got '1m'"),
    ]
    for bad, message in cases:
        with pytest.raises(ConfigurationError, match=message):
            settings(Config(**bad))


@pytest.mark.slow
def test_a_worker_removes_finished_workflows_once_expired(
    database_url: str, workers: Workers
) -> None:
    producer = retentionapp.create_app(database_url)
    try:
        producer.migrate()
        worker = workers.start(database_url, "-P", "threads", "-c", "1", app=retentionapp.APP_SPEC)
        noop = producer.workflows[retentionapp.NOOP]
        first = noop.apply_async(workflow_id="first")
        assert first.get(timeout=30) == "ok"
        # Retention removes it once EXPIRES seconds passed (polled, never slept).
        wait_for(lambda: "first" not in workflow_ids(database_url), "retention to remove it")
        worker.wait_for_log("retention: removed 1 finished workflow(s)")
        worker.assert_alive()
    finally:
        producer.close()
