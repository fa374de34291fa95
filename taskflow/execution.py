"""Running workflows in this process: direct calls, takeovers, retries, and the workflows a
worker claimed.

A mixin of :class:`taskflow.app.Taskflow`, kept apart so the app module holds configuration
and registration only.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from taskflow import signals
from taskflow.broker import Broker
from taskflow.broker.base import PendingRef
from taskflow.clock import Clock, now_ms
from taskflow.errors import (
    Retry,
    SerializationError,
    SoftTimeLimitExceeded,
    TimeLimitExceeded,
    UnknownWorkflowError,
    WorkflowConflictError,
)
from taskflow.handle import WorkflowHandle, failure
from taskflow.heartbeat import Heartbeat
from taskflow.limits import limit
from taskflow.models import Finish, NewWorkflow, StepRow, WorkflowRow
from taskflow.recovery import is_dead_local_executor
from taskflow.serialization import decode_error, encode_error
from taskflow.status import Status
from taskflow.task import Workflow, request_of
from taskflow.workflow import (
    Outcome,
    WorkflowContext,
    current_context,
    execute,
    forbid_in_step,
)

if TYPE_CHECKING:
    from taskflow.config import Config

log = logging.getLogger("taskflow")


@dataclass(frozen=True)
class WorkerMode:
    """How a worker wants a claimed workflow run."""

    executor_id: str
    defer_finish: bool = True
    """Return SUCCESS/ERROR unwritten, for the worker to write in a batch."""
    hard_limit_in_thread: bool = False
    """Enforce ``time_limit`` by raising in the thread (threads/solo pools, which have no child
    process to end)."""


class ExecutionMixin:
    """The running half of :class:`~taskflow.app.Taskflow`."""

    conf: Config
    clock: Clock
    _lock: threading.RLock
    _active: set[str]
    _workflows: dict[str, Workflow[..., Any]]
    _presence: Heartbeat | None
    _shared_executor: bool

    # Provided by Taskflow.
    @property
    def broker(self) -> Broker:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def executor_id(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def app_version(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _handle(
        self, workflow_id: str, wf: Workflow[..., Any] | None = None
    ) -> WorkflowHandle[Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    # -- direct calls ------------------------------------------------------------------------
    def _run_direct(
        self,
        wf: Workflow[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        workflow_id: str | None = None,
        timeout: float | None = None,
        user: str | None = None,
        raise_error: bool = True,
        eager: bool = False,
    ) -> Any:
        """Run ``wf`` durably here and return its result (raise its error), or with
        ``raise_error=False`` return its id, whatever the outcome."""
        wid, output, error = self._start(wf, args, kwargs, workflow_id, timeout, user, eager)
        if not raise_error:
            return wid
        if error is not None:
            raise decode_error(error)
        return wf._decode_result(output) if output is not None else None

    def _start(
        self,
        wf: Workflow[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        workflow_id: str | None,
        timeout: float | None,
        user: str | None,
        eager: bool = False,
    ) -> tuple[str, str | None, str | None]:
        """Start (or join) a workflow and run it to its end: its id, output and error text.

        Inside a workflow the call is a child workflow, recorded as a step of the parent.
        """
        forbid_in_step(f"starting workflow {wf.name!r}")
        parent = current_context()
        parent_step: int | None = None
        if parent is not None:
            parent_step, recorded = parent.take_step_id(wf.name)
            if recorded is not None:
                parent.failed_step = parent_step if recorded.error is not None else None
                return recorded.child_workflow_id or "", recorded.output, recorded.error
            workflow_id = workflow_id or f"{parent.workflow_id}-{parent_step}"
        inputs = wf.signature.encode_inputs(args, kwargs, f"workflow {wf.name!r}")
        call_args, call_kwargs = wf.signature.decode_inputs(inputs)
        wid = workflow_id or str(uuid.uuid4())
        now = now_ms(self.clock)
        effective_timeout = timeout if timeout is not None else wf.timeout
        new = NewWorkflow(
            id=wid,
            name=wf.name,
            status=Status.PENDING,
            inputs=inputs,
            executor_id=self.executor_id,
            app_version=self.app_version,
            user=user if user is not None else (parent.user if parent else None),
            parent_id=parent.workflow_id if parent else None,
            created_at=now,
            started_at=now,
            timeout_ms=int(effective_timeout * 1000) if effective_timeout else None,
        )
        self._ensure_presence()
        started = self.broker.start_workflow(new, now)
        if started.created:
            final = self._execute(wf, wid, call_args, call_kwargs, row_or_new=new, eager=eager)
        else:
            existing = started.row
            assert existing is not None
            if existing.name != wf.name:
                raise WorkflowConflictError(
                    f"workflow id {wid!r} belongs to workflow {existing.name!r}, not {wf.name!r}"
                )
            final = self._resume_or_wait(wf, existing, parent)
        error = final.error
        if final.status is not Status.SUCCESS and error is None:
            # CANCELLED or parked: record the exception get() would raise.
            error = encode_error(failure(wid, final.status, None))
        if parent is not None and parent_step is not None:
            parent.checkpoint(
                StepRow(
                    step_id=parent_step,
                    name=wf.name,
                    output=final.output,
                    error=error,
                    child_workflow_id=wid,
                    started_at=now,
                    finished_at=now_ms(self.clock),
                )
            )
            parent.failed_step = parent_step if error is not None else None
        return wid, final.output, error

    def _ensure_presence(self) -> None:
        """Heartbeat while this process runs workflows directly, so that workers recover
        them if it dies (a worker process has its own heartbeat)."""
        if self._shared_executor:
            return
        presence = self._presence
        if presence is not None and presence.running:
            return
        with self._lock:
            presence = self._presence
            if presence is not None and presence.running:
                return
            presence = Heartbeat(
                lambda: self.broker,
                self.clock,
                executor_id=self.executor_id,
                kind="process",
                name=self.executor_id,
                app_version=lambda: self.app_version,
                interval=self.conf.worker_heartbeat_interval,
            )
            presence.start()
            self._presence = presence

    def _resume_or_wait(
        self, wf: Workflow[..., Any], existing: WorkflowRow, parent: WorkflowContext | None
    ) -> Outcome:
        if existing.status is Status.PENDING and self._may_take_over(existing, parent):
            taken = self._take_over(wf, existing.id, existing.executor_id or "")
            if taken is not None:
                return taken
        return _stored(self._handle(existing.id, wf).wait())

    def _may_take_over(self, row: WorkflowRow, parent: WorkflowContext | None) -> bool:
        """Whether nobody can be running ``row`` but this process: its owner is this process
        (not running it now), a dead process on this host, or the previous executor of the
        parent this process now runs."""
        with self._lock:
            if row.id in self._active:
                return False
        owner = row.executor_id or ""
        # Worker children share their worker's id, so "mine" says nothing there.
        mine = owner == self.executor_id and not self._shared_executor
        return (
            mine
            or is_dead_local_executor(owner)
            or (parent is not None and row.parent_id == parent.workflow_id)
        )

    def _take_over(self, wf: Workflow[..., Any], workflow_id: str, owner: str) -> Outcome | None:
        """Claim a PENDING workflow from ``owner`` (counting one attempt) and run it here, or
        park it past ``max_recovery_attempts``. None if someone else claimed it first."""
        self._ensure_presence()
        row = self.broker.claim_for_recovery(
            workflow_id, owner, self.executor_id, now_ms(self.clock)
        )
        if row is None:
            return None
        if self._park_if_exhausted(wf, row):
            return Outcome(Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED)
        log.info("resuming workflow %r (%s), attempt %d", row.id, row.name, row.attempts)
        args, kwargs = wf.signature.decode_inputs(row.inputs)
        return self._execute(wf, row.id, args, kwargs, row_or_new=row)

    def _park_if_exhausted(self, wf: Workflow[..., Any], row: WorkflowRow) -> bool:
        if row.attempts - 1 <= wf.max_recovery_attempts:
            return False
        self.broker.set_status(
            row.id, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED, Status.PENDING, now_ms(self.clock)
        )
        log.warning(
            "workflow %r (%s) parked as MAX_RECOVERY_ATTEMPTS_EXCEEDED after %d attempts",
            row.id,
            row.name,
            row.attempts,
        )
        return True

    # -- the one execution path -------------------------------------------------------------
    def _execute(
        self,
        wf: Workflow[..., Any],
        workflow_id: str,
        args: list[Any],
        kwargs: dict[str, Any],
        row_or_new: WorkflowRow | NewWorkflow,
        *,
        mode: WorkerMode | None = None,
        eager: bool = False,
    ) -> Outcome:
        """Run a workflow this process owns to its end (retrying it as its options say) and
        return its final outcome. With ``mode.defer_finish`` a SUCCESS/ERROR outcome comes
        back unwritten (``recorded=False``, status SUCCESS/ERROR) for the worker to write."""
        with self._lock:
            if workflow_id in self._active:
                raise WorkflowConflictError(f"workflow {workflow_id!r} is already running here")
            self._active.add(workflow_id)
        try:
            outcome = self._run_attempts(wf, workflow_id, args, kwargs, row_or_new, mode, eager)
        finally:
            with self._lock:
                self._active.discard(workflow_id)
        if outcome.recorded or mode is not None:
            return outcome
        # Someone else decided the outcome (a cancel, or another executor that took it over
        # while this one looked dead): the stored row is the truth.
        return _stored(self._handle(workflow_id, wf).wait())

    def _run_attempts(
        self,
        wf: Workflow[..., Any],
        workflow_id: str,
        args: list[Any],
        kwargs: dict[str, Any],
        row_or_new: WorkflowRow | NewWorkflow,
        mode: WorkerMode | None,
        eager: bool,
    ) -> Outcome:
        attempt = row_or_new.attempts if isinstance(row_or_new, WorkflowRow) else 1
        retries = first_retries = row_or_new.retries if isinstance(row_or_new, WorkflowRow) else 0
        broker = self.broker
        fn = wf._callable()
        # A workflow started here, or claimed for the first time, has no history to load;
        # anything else loads it when its first step is reached.
        fresh = not isinstance(row_or_new, WorkflowRow) or row_or_new.fresh
        while True:
            history = not fresh or retries > first_retries
            ctx = WorkflowContext(
                broker=broker,
                clock=self.clock,
                workflow_id=workflow_id,
                name=wf.name,
                executor_id=mode.executor_id if mode else self.executor_id,
                app_version=row_or_new.app_version or self.app_version,
                attempt=attempt,
                queue=row_or_new.queue,
                user=row_or_new.user,
                deadline_ms=row_or_new.deadline_at,
                retries=retries,
                args=tuple(args),
                kwargs=kwargs,
                eager=eager,
                park_after=self.conf.workflow_park_after if mode is not None else None,
                load_recorded=(
                    (lambda: {s.step_id: s for s in broker.load_steps(workflow_id)})
                    if history
                    else None
                ),
            )
            signals.task_prerun.send(
                sender=wf, task_id=workflow_id, task=wf, args=args, kwargs=kwargs
            )
            soft = wf.soft_time_limit if mode is not None else None
            hard = wf.time_limit if mode is not None and mode.hard_limit_in_thread else None
            with limit(hard, TimeLimitExceeded), limit(soft, SoftTimeLimitExceeded):
                outcome = execute(ctx, fn, args, kwargs, finish=False)
            if outcome.status not in (Status.SUCCESS, Status.ERROR):
                return outcome  # cancelled: nothing to write
            delay = self._retry_delay(wf, outcome.exception, retries)
            if delay is not None:
                signals.task_retry.send(
                    sender=wf, request=request_of(ctx), reason=outcome.exception, einfo=None
                )
                if ctx.failed_step is not None:
                    # The step whose error ended this run runs again on the retry.
                    broker.forget_step(workflow_id, ctx.failed_step)
                cause = outcome.exception
                if isinstance(cause, Retry) and cause.exc is not None:
                    cause = cause.exc
                error = encode_error(cause) if cause is not None else None
                if mode is not None:
                    now = now_ms(self.clock)
                    until = now + int(delay * 1000)
                    if not broker.retry_later(workflow_id, mode.executor_id, until, error, now):
                        log.warning(
                            "workflow %r (%s): retry not recorded; it is no longer running here",
                            workflow_id,
                            wf.name,
                        )
                    return Outcome(Status.DELAYED, recorded=True)
                log.info("retrying workflow %r (%s) in %.3gs", workflow_id, wf.name, delay)
                self.clock.sleep(delay)
                retries += 1
                continue
            self._send_outcome_signals(wf, workflow_id, args, kwargs, outcome)
            if mode is not None and mode.defer_finish:
                return outcome
            recorded = broker.finish_workflow(
                workflow_id, outcome.status, outcome.output, outcome.error, now_ms(self.clock)
            )
            return replace(outcome, recorded=recorded)

    def _retry_delay(
        self, wf: Workflow[..., Any], exc: BaseException | None, retries: int
    ) -> float | None:
        """Seconds until a workflow-level retry, or None when the outcome stands."""
        if exc is None:
            return None
        if isinstance(exc, Retry):
            # self.retry() checked the limit itself; a Retry raised any other way (or
            # replayed from a step) is held to the workflow's max_retries.
            if not exc.checked and not wf.retry_policy.retries_left(retries):
                return None
            return exc.when if exc.when is not None else wf.retry_policy.default_retry_delay
        if wf.retry_policy.should_autoretry(exc, retries):
            return wf.retry_policy.delay(retries)
        return None

    @staticmethod
    def _send_outcome_signals(
        wf: Workflow[..., Any],
        workflow_id: str,
        args: list[Any],
        kwargs: dict[str, Any],
        outcome: Outcome,
    ) -> None:
        if outcome.status is Status.SUCCESS:
            signals.task_success.send(sender=wf, result=outcome.value)
        else:
            exc = outcome.exception
            signals.task_failure.send(
                sender=wf,
                task_id=workflow_id,
                exception=exc,
                args=args,
                kwargs=kwargs,
                traceback=exc.__traceback__ if exc is not None else None,
                einfo=None,
            )
        signals.task_postrun.send(
            sender=wf,
            task_id=workflow_id,
            task=wf,
            args=args,
            kwargs=kwargs,
            retval=outcome.value if outcome.status is Status.SUCCESS else outcome.exception,
            state=outcome.status.value,
        )

    # -- claimed by a worker -----------------------------------------------------------------
    def run_claimed(self, row: WorkflowRow, mode: WorkerMode) -> Finish | None:
        """Run a workflow a worker claimed. Returns the SUCCESS/ERROR outcome for the worker
        to write (with ``mode.defer_finish``), or None when it was written here (parked,
        retried, cancelled, or taken by someone else)."""
        wf = self._workflows.get(row.name)
        if wf is None:
            exc = UnknownWorkflowError(
                f"workflow {row.name!r} (id {row.id!r}) is not registered in this worker's app"
            )
            log.error("%s", exc)
            return self._deliver(row.id, Status.ERROR, None, encode_error(exc), mode)
        if self._park_if_exhausted(wf, row):
            return None
        try:
            args, kwargs = wf.signature.decode_inputs(row.inputs)
        except (SerializationError, ValueError, TypeError) as exc:
            return self._deliver(row.id, Status.ERROR, None, encode_error(exc), mode)
        outcome = self._execute(wf, row.id, args, kwargs, row_or_new=row, mode=mode)
        if outcome.status in (Status.SUCCESS, Status.ERROR) and not outcome.recorded:
            return self._deliver(row.id, outcome.status, outcome.output, outcome.error, mode)
        return None

    def _deliver(
        self,
        workflow_id: str,
        status: Status,
        output: str | None,
        error: str | None,
        mode: WorkerMode,
    ) -> Finish | None:
        if mode.defer_finish:
            return Finish(workflow_id, status, output, error)
        self.broker.finish_workflow(workflow_id, status, output, error, now_ms(self.clock))
        return None

    # -- recovery ----------------------------------------------------------------------------
    def recover(self, executor_id: str | None = None) -> list[WorkflowHandle[Any]]:
        """Resume, in this process, the PENDING workflows (of this app version) whose
        executor is gone, and return their handles once they have run.

        Without ``executor_id`` that means: workflows of processes on this host that are no
        longer running, and workflows carrying this process's own (configured) executor id
        that are not running here. With ``executor_id``, that executor's workflows: use it
        when you know a process on another machine is gone. Each takeover counts one
        attempt; past ``max_recovery_attempts`` the workflow is parked instead of run.
        """
        me = self.executor_id
        wanted: list[PendingRef] = []
        for ref in self.broker.list_pending(self.app_version):
            if ref.name not in self._workflows:
                # Not ours to run: leave it, unclaimed, for a process that registers it.
                log.warning(
                    "not recovering workflow %r: %r is not registered in this app",
                    ref.id,
                    ref.name,
                )
                continue
            if executor_id is not None:
                gone = ref.executor_id == executor_id
            elif ref.executor_id == me:
                with self._lock:
                    gone = ref.id not in self._active
            else:
                gone = is_dead_local_executor(ref.executor_id)
            if gone:
                wanted.append(ref)
        wanted_ids = {ref.id for ref in wanted}
        # A child whose parent is recovered too is taken over by the parent's replay, when it
        # reaches the call; run it here only if the replay did not.
        children = [ref for ref in wanted if ref.parent_id in wanted_ids]
        handles: list[WorkflowHandle[Any]] = []
        for ref in [r for r in wanted if r.parent_id not in wanted_ids] + children:
            wf = self._workflows[ref.name]
            self._take_over(wf, ref.id, ref.executor_id)
            handles.append(self._handle(ref.id, wf))
        return handles


def _stored(row: WorkflowRow) -> Outcome:
    return Outcome(row.status, row.output, row.error)


__all__ = ["ExecutionMixin", "WorkerMode"]
