"""``WorkflowHandle``: a reference to one workflow, wherever it runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, overload

from taskflow import control
from taskflow.broker.base import Broker
from taskflow.clock import Clock, SystemClock
from taskflow.errors import (
    MaxRecoveryAttemptsExceededError,
    UnknownWorkflowError,
    WorkflowCancelledError,
)
from taskflow.models import StepInfo, WorkflowInfo, WorkflowRow, step_info, workflow_info
from taskflow.serialization import decode, decode_error
from taskflow.status import Status

R = TypeVar("R")

_FIRST_POLL = 0.001

WorkflowWaiter = Callable[[Broker, str, "float | None"], "WorkflowRow | None"]
"""Waits durably for a workflow's outcome from inside workflow code (None elsewhere)."""

_workflow_waiter: list[WorkflowWaiter] = []


def set_workflow_waiter(waiter: WorkflowWaiter) -> None:
    """Install what ``get()`` does inside workflow code: a recorded wait that parks when long
    (it lives above this module, hence the hook)."""
    _workflow_waiter[:] = [waiter]


class WorkflowHandle(Generic[R]):
    """A workflow by id: its status, its result, its steps.

    Every property reads the database afresh, like Celery's ``AsyncResult``.
    """

    def __init__(
        self,
        broker: Broker,
        workflow_id: str,
        decode_result: Callable[[str], Any] | None = None,
        poll_interval: float = 0.05,
        clock: Clock | None = None,
    ) -> None:
        self._broker = broker
        self._id = workflow_id
        self._decode_result: Callable[[str], Any] = decode_result or decode
        self._poll_interval = poll_interval
        self._clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self._id!r}>"

    @property
    def id(self) -> str:
        """The workflow id."""
        return self._id

    @property
    def workflow_id(self) -> str:
        """Alias of :attr:`id`."""
        return self._id

    @property
    def task_id(self) -> str:
        """Alias of :attr:`id`, for Celery code."""
        return self._id

    def _row(self) -> WorkflowRow:
        row = self._broker.get_workflow(self._id)
        if row is None:
            raise UnknownWorkflowError(f"no workflow with id {self._id!r}")
        return row

    @property
    def status(self) -> Status:
        """The current status."""
        status = self._broker.get_status(self._id)
        if status is None:
            raise UnknownWorkflowError(f"no workflow with id {self._id!r}")
        return status

    def ready(self) -> bool:
        """True once the workflow has finished (SUCCESS, ERROR, CANCELLED or parked)."""
        return self.status.is_finished

    def successful(self) -> bool:
        """True if it finished with SUCCESS."""
        return self.status is Status.SUCCESS

    def failed(self) -> bool:
        """True if it finished with ERROR or was parked after too many recoveries."""
        return self.status in (Status.ERROR, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED)

    def info(self) -> WorkflowInfo:
        """The status record: name, status, queue, times, attempts, executor, version, error."""
        return workflow_info(self._row())

    def steps(self) -> list[StepInfo]:
        """The recorded steps, in order."""
        self._row()
        return [step_info(s) for s in self._broker.load_steps(self._id)]

    @overload
    def get(
        self,
        timeout: float | None = None,
        interval: float | None = None,
        propagate: Literal[True] = True,
    ) -> R: ...

    @overload
    def get(
        self, timeout: float | None = None, interval: float | None = None, *, propagate: bool
    ) -> R | BaseException: ...

    def get(
        self, timeout: float | None = None, interval: float | None = None, propagate: bool = True
    ) -> R | BaseException:
        """Wait for the outcome and return the result.

        Raises the workflow's own exception (its original type when importable, else
        :class:`~taskflow.errors.WorkflowError`), :class:`WorkflowCancelledError` for a cancelled
        workflow, and the built-in :class:`TimeoutError` when ``timeout`` seconds pass first.
        With ``propagate=False`` the exception is returned instead of raised.

        Inside workflow code the wait is a step of that workflow: its outcome is recorded
        (a replay returns the same one), and run by a worker a long wait parks the workflow
        until this one finishes.
        """
        row = None
        if _workflow_waiter:
            try:
                row = _workflow_waiter[0](self._broker, self._id, timeout)
            except Exception as exc:
                if propagate:
                    raise
                return exc
        if row is None:
            row = self.wait(timeout=timeout, interval=interval)
        return self.outcome(row, propagate)  # type: ignore[no-any-return]

    def wait(self, timeout: float | None = None, interval: float | None = None) -> WorkflowRow:
        """Block until the workflow has finished and return its row."""
        limit = self._poll_interval if interval is None else max(interval, 0.0)
        deadline = None if timeout is None else self._clock.monotonic() + timeout
        delay = min(_FIRST_POLL, limit)
        while True:
            status = self._broker.get_status(self._id)
            if status is None:
                raise UnknownWorkflowError(f"no workflow with id {self._id!r}")
            if status.is_finished:
                return self._row()
            if deadline is not None:
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"workflow {self._id!r} did not finish within {timeout}s "
                        f"(status {status.value})"
                    )
                delay = min(delay, left)
            self._clock.sleep(delay)
            delay = min(delay * 2, limit)

    # -- control ---------------------------------------------------------------------------
    def cancel(self) -> list[str]:
        """Cancel this workflow, if it is still ENQUEUED, DELAYED or PENDING, and every
        descendant of it still in one of those statuses, in one statement.

        A waiting workflow never starts. A running one stops at its next step checkpoint:
        the step in flight (the next one, if the cancel lands between two) finishes and its
        outcome is kept, nothing after it runs, and ``get()`` raises
        :class:`WorkflowCancelledError`. Returns the ids cancelled by this call (this
        workflow first, then its descendants): empty when it had finished already. Raises
        :class:`UnknownWorkflowError` if the workflow does not exist.
        """
        done = control.cancel(self._broker, self._clock, [self._id])
        if not done and self._broker.get_status(self._id) is None:
            raise UnknownWorkflowError(f"no workflow with id {self._id!r}")
        return done

    def resume(self) -> WorkflowHandle[R]:
        """Run a CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow again from its
        last completed step, through its own queue (``default`` if it had none); return this
        handle.

        Completed steps are replayed from their checkpoints; for an ERROR workflow, the last
        step runs again when its error is what ended the workflow. Recovery attempts start
        over and a ``timeout`` counts again from the next start. Raises
        :class:`WorkflowStatusError` (naming the status) for a workflow in any other status
        and :class:`UnknownWorkflowError` if it does not exist. To move it to another queue
        use ``app.resume(id, queue=...)``.
        """
        control.resume(self._broker, self._clock, [self._id])
        return self

    def set_delay(self, seconds: float | None = None, until: datetime | None = None) -> None:
        """Move the start of this DELAYED workflow: to ``seconds`` from now, or to ``until``
        (a datetime; naive means UTC). At or before now it becomes ENQUEUED at once.

        Give exactly one of them (else :class:`ConfigurationError`). Raises
        :class:`WorkflowStatusError` if the workflow is not DELAYED and
        :class:`UnknownWorkflowError` if it does not exist.
        """
        control.set_delay(self._broker, self._clock, self._id, seconds, until)

    def outcome(self, row: WorkflowRow, propagate: bool = True) -> Any:
        """The result a finished row holds, or its error raised (returned if not propagate)."""
        if row.status is Status.SUCCESS:
            return self._decode_result(row.output) if row.output is not None else None
        exc = failure(row.id, row.status, row.error)
        if propagate:
            raise exc
        return exc


def failure(workflow_id: str, status: Status, error: str | None) -> BaseException:
    """The exception that stands for a workflow that did not succeed."""
    if error is not None:
        return decode_error(error)
    if status is Status.CANCELLED:
        return WorkflowCancelledError(f"workflow {workflow_id!r} was cancelled")
    if status is Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED:
        return MaxRecoveryAttemptsExceededError(
            f"workflow {workflow_id!r} exceeded its maximum recovery attempts and was parked"
        )
    return UnknownWorkflowError(f"workflow {workflow_id!r} has no outcome (status {status})")


__all__ = ["WorkflowHandle", "failure"]
