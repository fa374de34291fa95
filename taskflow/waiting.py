"""Durable waits inside workflows: ``taskflow.sleep``, and the wait loop that ``recv``,
``get_event`` and a child's result share.

Every wait records when it ends (a step holding the deadline) before it waits, so a replay
after a crash or a park waits for what is left, never the whole duration again. A workflow
run by a worker parks when its wait outlasts ``workflow_park_after``: it gives back its
worker slot and its queue's concurrency slot, and is claimed again (and replays to the same
wait) when the deadline comes or what it waits for arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from taskflow.broker.sql_broker import DEFAULT_QUEUE
from taskflow.broker.wakeups import Subscription
from taskflow.clock import Clock, SystemClock, now_ms
from taskflow.errors import ConfigurationError, TaskflowError, WorkflowCancelledError
from taskflow.models import StepRow, Wait
from taskflow.serialization import decode, encode
from taskflow.status import Status
from taskflow.workflow import WorkflowContext, WorkflowParked, current_context

log = logging.getLogger("taskflow")

T = TypeVar("T")

SLEEP_STEP = "taskflow.sleep"
"""Step name of a durable sleep: its output is the wake-up time (ms since the epoch)."""


def workflow_context(what: str) -> WorkflowContext:
    """The running workflow, refusing calls outside one and inside steps."""
    ctx = current_context()
    if ctx is None:
        raise TaskflowError(f"{what} was called outside a workflow: call it from workflow code")
    if ctx.in_step:
        raise TaskflowError(
            f"{what} is not allowed inside a step (step {ctx.step_id} of workflow "
            f"{ctx.workflow_id!r}): call it from the workflow function instead"
        )
    return ctx


def check_duration(what: str, name: str, value: float | None, allow_none: bool = False) -> None:
    """Refuse a duration that is not a number of seconds >= 0."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigurationError(f"{what}: {name} must be a number of seconds >= 0, got {value!r}")


def check_key(key: object, what: str) -> str:
    """Refuse an event or stream key that is not a non-empty string."""
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"{what}: key must be a non-empty string, got {key!r}")
    return key


def sleep(seconds: float) -> None:
    """Sleep durably inside a workflow.

    The wake-up time is recorded when the sleep starts: after a crash, a restart or a park
    the workflow wakes at that time, neither later by the time it was down nor earlier. Run
    by a worker, a sleep longer than ``workflow_park_after`` gives back its worker slot at
    once. Raises :class:`TaskflowError` outside a workflow or inside a step.
    """
    ctx = workflow_context("taskflow.sleep()")
    check_duration("taskflow.sleep()", "seconds", seconds)
    wake = record_deadline(ctx, SLEEP_STEP, seconds)
    assert wake is not None
    wait_until(
        ctx,
        wake,
        check=lambda: None,
        subscription=None,
        wait=Wait(kind="sleep", until=wake),
    )


def record_deadline(ctx: WorkflowContext, name: str, seconds: float | None) -> int | None:
    """Take the next step id for a deadline ``seconds`` from now (None: no deadline) and
    return it, recording it on first execution and reading it back on replay."""
    step_id, recorded = ctx.take_step_id(name)
    if recorded is not None:
        return decode(recorded.output, int | None) if recorded.output is not None else None
    now = now_ms(ctx.clock)
    deadline = None if seconds is None else now + int(seconds * 1000)
    row = ctx.checkpoint(
        StepRow(
            step_id=step_id,
            name=name,
            output=encode(deadline),
            started_at=now,
            finished_at=now,
        )
    )
    return decode(row.output, int | None) if row.output is not None else None


def wait_until(
    ctx: WorkflowContext,
    deadline: int | None,
    check: Callable[[], T | None],
    subscription: Subscription | None,
    wait: Wait,
) -> T | None:
    """Return ``check()`` once it is not None, or None at ``deadline`` (ms; None: never).

    Between checks it waits on ``subscription`` (woken by writes) or, without one, sleeps.
    Run by a worker, it parks the workflow once the wait has held the slot for
    ``park_after`` seconds (a pure sleep parks at once when longer than that)."""
    clock = ctx.clock
    started = clock.monotonic()
    while True:
        got = check()
        if got is not None:
            return got
        ctx.check_deadline()
        now = now_ms(clock)
        if deadline is not None and now >= deadline:
            return None
        left = None if deadline is None else (deadline - now) / 1000
        park_after = ctx.park_after
        if park_after is not None:
            held = clock.monotonic() - started
            pure_sleep = subscription is None and wait.kind == "sleep"
            if (pure_sleep and left is not None and left > park_after) or (
                not pure_sleep and held >= park_after
            ):
                park(ctx, wait)
            budget = park_after - held if not pure_sleep else left
        else:
            budget = left
        pause(clock, subscription, min(x for x in (left, budget, 3600.0) if x is not None))


def pause(clock: Clock, subscription: Subscription | None, seconds: float) -> None:
    """Wait up to ``seconds`` before looking again: on the subscription when there is one
    (a write wakes it early), else on the clock. An injected clock moves time itself, so a
    subscribed wait then skips at most one poll interval at a time."""
    if subscription is None:
        clock.sleep(seconds)
    elif isinstance(clock, SystemClock):
        subscription.wait(seconds)
    else:
        clock.sleep(min(seconds, max(subscription.poll_interval, 0.001)))


def park(ctx: WorkflowContext, wait: Wait) -> NoReturn:
    """Give the workflow's slots back until its wait ends: raises :class:`WorkflowParked`
    (the row is DELAYED, or ENQUEUED when what it waits for just arrived). Raises
    :class:`WorkflowCancelledError` if the workflow is no longer this executor's to run."""
    # Steps started with start_step must be recorded first: the replay after the park would
    # otherwise run a step that is still running here a second time.
    ctx.wait_unfinished()
    status = ctx.broker.park(
        ctx.workflow_id, ctx.executor_id, wait, now_ms(ctx.clock), ctx.queue or DEFAULT_QUEUE
    )
    if status is None:
        # Cancelled meanwhile, or taken over by another executor: stop without writing.
        ctx.cancelled = True
        raise WorkflowCancelledError(
            f"workflow {ctx.workflow_id!r} stopped while it waited: it was cancelled or is "
            "run elsewhere now"
        )
    log.debug(
        "workflow %r parked (%s) until %s: %s",
        ctx.workflow_id,
        wait.kind,
        wait.until,
        status.value,
    )
    raise WorkflowParked(wait)


def stop_if_cancelled(ctx: WorkflowContext, status: Status | None) -> None:
    """Stop the workflow when a write found it CANCELLED."""
    if status is Status.CANCELLED:
        ctx.cancelled = True
        raise WorkflowCancelledError(f"workflow {ctx.workflow_id!r} was cancelled")


def decode_any(raw: str) -> Any:
    """A message or event value as JSON types."""
    return decode(raw)


__all__ = [
    "SLEEP_STEP",
    "check_duration",
    "check_key",
    "decode_any",
    "park",
    "pause",
    "record_deadline",
    "sleep",
    "stop_if_cancelled",
    "wait_until",
    "workflow_context",
]
