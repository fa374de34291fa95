"""Durable execution of one workflow in this process: its context, replay, and outcome.

While a workflow function runs, a :class:`WorkflowContext` sits in a context variable. Steps
read it to number themselves, to replay recorded outcomes, and to checkpoint new ones.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from taskflow.broker.base import Broker
from taskflow.clock import Clock, now_ms
from taskflow.errors import (
    NonDeterministicWorkflowError,
    TaskflowError,
    WorkflowCancelledError,
)
from taskflow.models import StepRow
from taskflow.serialization import encode, encode_error
from taskflow.status import Status

log = logging.getLogger("taskflow")


@dataclass(frozen=True)
class CurrentInfo:
    """What ``taskflow.current()`` tells the running code."""

    workflow_id: str
    """Id of the running workflow."""
    name: str
    """Registered name of the running workflow."""
    step_id: int | None
    """Id of the running step, or None in workflow code between steps."""
    attempt: int
    """1 on the first execution, +1 for each recovery."""
    queue: str | None
    """Queue the workflow came from (None when called directly)."""
    user: str | None
    """The user the workflow was started for, if any."""
    app_version: str
    """The app version it runs on."""


@dataclass
class WorkflowContext:
    """The state of one running workflow execution."""

    broker: Broker
    clock: Clock
    workflow_id: str
    name: str
    executor_id: str
    app_version: str
    attempt: int = 1
    queue: str | None = None
    user: str | None = None
    deadline_ms: int | None = None
    retries: int = 0
    """Workflow-level retries so far (``self.request.retries``)."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    eager: bool = False
    """Run inline by ``task_always_eager``."""
    recorded: dict[int, StepRow] = field(default_factory=dict)
    load_recorded: Callable[[], dict[int, StepRow]] | None = None
    """Loads ``recorded`` when the first step is reached, so a workflow that records no step
    (or a fresh one) costs no query."""
    next_step: int = 0
    failed_step: int | None = None
    """The last step reached, when its outcome was an error: a workflow-level retry forgets
    that error so the step runs again."""
    cancelled: bool = False
    """Set when this workflow itself was found cancelled (not when code it called raised
    WorkflowCancelledError, such as a cancelled child)."""
    broken: BaseException | None = None
    """Set when a checkpoint could not be written: the workflow must stop without recording
    an outcome, so that it stays PENDING and is recovered."""
    park_after: float | None = None
    """Seconds a wait may hold its worker slot before the workflow parks (gives the slot back
    and is claimed again when the wait ends). None: never park (run directly, not by a
    worker)."""
    unfinished: list[Callable[[], None]] = field(default_factory=list)
    """One wait per step started with ``taskflow.start_step`` in its own thread: the outcome
    of the workflow is written only once they have returned (see :meth:`wait_unfinished`)."""

    @property
    def step_id(self) -> int | None:
        """Id of the step whose body runs in this thread, else None."""
        return _step.get()

    @property
    def in_step(self) -> bool:
        """True while a step body runs."""
        return _step.get() is not None

    def take_step_id(self, name: str) -> tuple[int, StepRow | None]:
        """Number the next step and return its recorded outcome, checking it is the same step
        the history holds at that position."""
        if self.load_recorded is not None:
            self.recorded = self.load_recorded()
            self.load_recorded = None
        step_id = self.next_step
        self.next_step += 1
        recorded = self.recorded.get(step_id)
        if recorded is not None and recorded.name != name:
            raise NonDeterministicWorkflowError(
                f"workflow {self.workflow_id!r} ({self.name}) called step {name!r} at position "
                f"{step_id}, but its recorded history has {recorded.name!r} there: the code "
                "changed since it started; resume it on the app version it started on"
            )
        return step_id, recorded

    def recorded_history(self) -> dict[int, StepRow]:
        """The steps recorded before this execution started, by step id (loaded once, the
        same lazy way :meth:`take_step_id` loads them)."""
        if self.load_recorded is not None:
            self.recorded = self.load_recorded()
            self.load_recorded = None
        return self.recorded

    def peek_step(self) -> StepRow | None:
        """The recorded outcome at the next step position, without taking the position:
        ``taskflow.patch()`` looks at the history before it decides whether to use it."""
        return self.recorded_history().get(self.next_step)

    def wait_unfinished(self) -> None:
        """Wait for the steps this execution started with ``taskflow.start_step`` and left
        running, so that none is still running, or unrecorded, once the workflow has an
        outcome (a workflow-level retry would otherwise run such a step a second time). Not
        after a cancel or a failed checkpoint: nothing more can be recorded then."""
        waits, self.unfinished = self.unfinished, []
        for wait in waits:
            if self.cancelled or self.broken is not None:
                return
            wait()

    def check_deadline(self) -> None:
        """Cancel the workflow, and its unfinished descendants, if its durable timeout has
        passed."""
        if self.deadline_ms is not None and now_ms(self.clock) >= self.deadline_ms:
            self.broker.cancel([self.workflow_id], now_ms(self.clock))
            self.cancelled = True
            raise WorkflowCancelledError(
                f"workflow {self.workflow_id!r} was cancelled: its timeout passed"
            )

    def checkpoint(self, step: StepRow) -> StepRow:
        """Record a step outcome; return the outcome that holds (another executor's, if it
        recorded this step first). Stops the workflow if it was cancelled meanwhile."""
        try:
            write = self.broker.record_step(self.workflow_id, step)
        except BaseException as exc:
            self.broken = exc
            raise
        if write.status is Status.CANCELLED:
            self.cancelled = True
            self._cancel_late_children()
            raise WorkflowCancelledError(f"workflow {self.workflow_id!r} was cancelled")
        if not write.inserted and write.existing is not None:
            return write.existing
        return step

    def _cancel_late_children(self) -> None:
        # A child enqueued while the cancel ran was not in that statement's snapshot, but its
        # enqueue committed before this checkpoint: cancelling the tree again here catches it.
        try:
            self.broker.cancel([self.workflow_id], now_ms(self.clock))
        except Exception:
            # The workflow itself is cancelled already; only such a late child may run on.
            log.warning(
                "workflow %r: cancelling children started during its cancellation failed",
                self.workflow_id,
                exc_info=True,
            )


class WorkflowParked(BaseException):
    """Unwinds a workflow that parked while it waits: it is DELAYED (or back in its queue)
    and resumes by replay when claimed again. A ``BaseException`` so that ``except
    Exception`` in workflow code cannot swallow it."""


_current: contextvars.ContextVar[WorkflowContext | None] = contextvars.ContextVar(
    "taskflow_workflow", default=None
)
# Kept apart from the context object so that a step abandoned by its timeout, still running
# in its own thread with a copy of this variable, never sees itself outside a step.
_step: contextvars.ContextVar[int | None] = contextvars.ContextVar("taskflow_step", default=None)


@contextmanager
def in_step(step_id: int) -> Iterator[None]:
    """Mark the block as the body of step ``step_id``."""
    token = _step.set(step_id)
    try:
        yield
    finally:
        _step.reset(token)


def current_context() -> WorkflowContext | None:
    """The running workflow's context, or None outside any workflow."""
    return _current.get()


def current() -> CurrentInfo:
    """Who is running: workflow id, step id, attempt, queue, user and app version.

    Raises :class:`TaskflowError` outside a workflow.
    """
    ctx = _current.get()
    if ctx is None:
        raise TaskflowError("taskflow.current() was called outside a workflow")
    return CurrentInfo(
        workflow_id=ctx.workflow_id,
        name=ctx.name,
        step_id=ctx.step_id,
        attempt=ctx.attempt,
        queue=ctx.queue,
        user=ctx.user,
        app_version=ctx.app_version,
    )


def forbid_in_step(what: str) -> None:
    """Refuse an operation that only workflow code may do."""
    ctx = _current.get()
    if ctx is not None and ctx.in_step:
        raise TaskflowError(
            f"{what} is not allowed inside a step (step {ctx.step_id} of workflow "
            f"{ctx.workflow_id!r}): do it in the workflow function instead"
        )


@contextmanager
def running(ctx: WorkflowContext) -> Iterator[WorkflowContext]:
    """Make ``ctx`` the current workflow for the duration of the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class Outcome:
    """How one execution of a workflow function ended."""

    status: Status
    output: str | None = None
    error: str | None = None
    recorded: bool = True
    """False when another writer (a canceller, a concurrent executor) decided the outcome:
    read the stored row for the truth. Also False for an outcome :func:`execute` was told not
    to write (``finish=False``): the caller writes it."""
    exception: BaseException | None = None
    """The exception that ended it (ERROR), for retry decisions; never stored as such."""
    value: Any = None
    """The returned value (SUCCESS)."""


def execute(
    ctx: WorkflowContext,
    fn: Callable[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    finish: bool = True,
) -> Outcome:
    """Run a workflow function to its end and, with ``finish``, record the outcome (guarded
    by PENDING). Without ``finish`` the SUCCESS/ERROR outcome is returned unwritten, for the
    caller to retry, or to write in a batch.

    If a checkpoint could not be written the database error propagates and nothing is
    recorded, even if the workflow code caught it: the workflow stays PENDING for recovery.
    A ``BaseException`` that is not an ``Exception`` (KeyboardInterrupt, SystemExit) also
    propagates and leaves it PENDING.
    """
    try:
        with running(ctx):
            ctx.check_deadline()
            try:
                value = fn(*args, **kwargs)
            except Exception:
                ctx.wait_unfinished()
                raise
            ctx.wait_unfinished()
    except WorkflowParked:
        # Written already by the park: nothing more to record here.
        return Outcome(Status.DELAYED, recorded=True)
    except WorkflowCancelledError as exc:
        if ctx.broken is not None:
            raise ctx.broken from None
        if ctx.cancelled:
            return Outcome(Status.CANCELLED, recorded=False, exception=exc)
        # Raised by something it called (a cancelled child): an ordinary failure.
        return _finish(ctx, finish, Status.ERROR, None, exc)
    except Exception as exc:
        if ctx.broken is not None:
            raise ctx.broken from None
        return _finish(ctx, finish, Status.ERROR, None, exc)
    if ctx.broken is not None:
        raise ctx.broken
    try:
        output = encode(value, f"result of workflow {ctx.name!r}")
    except TaskflowError as exc:
        return _finish(ctx, finish, Status.ERROR, None, exc)
    return _finish(ctx, finish, Status.SUCCESS, output, None, value)


def _finish(
    ctx: WorkflowContext,
    write: bool,
    status: Status,
    output: str | None,
    exc: BaseException | None,
    value: Any = None,
) -> Outcome:
    error = encode_error(exc) if exc is not None else None
    recorded = False
    if write:
        recorded = ctx.broker.finish_workflow(
            ctx.workflow_id, status, output, error, now_ms(ctx.clock)
        )
    return Outcome(status, output, error, recorded, exc, value)


__all__ = [
    "CurrentInfo",
    "Outcome",
    "WorkflowContext",
    "WorkflowParked",
    "current",
    "current_context",
    "execute",
    "forbid_in_step",
    "in_step",
    "running",
]
