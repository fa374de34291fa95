"""``Taskflow``: the app, its registry of workflows and steps, and direct durable calls."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from taskflow.broker import Broker, create_broker
from taskflow.broker.base import PendingRef
from taskflow.clock import Clock, SystemClock, now_ms
from taskflow.config import Config
from taskflow.errors import (
    ConfigurationError,
    UnknownWorkflowError,
    WorkflowConflictError,
)
from taskflow.handle import WorkflowHandle, failure
from taskflow.models import NewWorkflow, StepRow, WorkflowRow
from taskflow.recovery import is_dead_local_executor, local_executor_id
from taskflow.retry import RetryPolicy
from taskflow.serialization import Signature, decode_error, encode_error
from taskflow.status import Status
from taskflow.step import Step
from taskflow.workflow import (
    Outcome,
    WorkflowContext,
    current_context,
    execute,
    forbid_in_step,
)

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("taskflow")


class Workflow(Generic[P, R]):
    """A function registered with ``@app.workflow``.

    Calling it runs it durably in this process and returns its result.
    """

    def __init__(
        self,
        app: Taskflow,
        fn: Callable[P, R],
        name: str,
        queue: str | None,
        max_recovery_attempts: int,
        timeout: float | None,
    ) -> None:
        if not isinstance(max_recovery_attempts, int) or max_recovery_attempts < 0:
            raise ConfigurationError(
                f"workflow {name!r}: max_recovery_attempts must be an integer >= 0, "
                f"got {max_recovery_attempts!r}"
            )
        _check_timeout(f"workflow {name!r}", timeout)
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise ConfigurationError(f"workflow {name!r}: queue must be a non-empty string")
        self.app = app
        self.fn = fn
        self.name = name
        self.queue = queue
        self.max_recovery_attempts = max_recovery_attempts
        self.timeout = timeout
        self.signature = Signature(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<taskflow workflow {self.name!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.app._run_direct(self, args, kwargs)  # type: ignore[no-any-return]

    def apply(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        workflow_id: str | None = None,
        task_id: str | None = None,
        timeout: float | None = None,
        user: str | None = None,
    ) -> WorkflowHandle[R]:
        """Run the workflow durably in this process and return its finished handle (Celery's
        ``apply``). With an id that already exists, return that workflow's handle instead of
        running it again (exactly-once processing of an event)."""
        wid = _pick_id(workflow_id, task_id)
        _check_timeout(f"workflow {self.name!r}", timeout)
        done_id = self.app._run_direct(
            self, tuple(args), dict(kwargs or {}), wid, timeout, user, raise_error=False
        )
        return self.app._handle(done_id, self)

    def _decode_result(self, raw: str) -> Any:
        return self.signature.decode_result(raw)


def _pick_id(workflow_id: str | None, task_id: str | None) -> str | None:
    if workflow_id is not None and task_id is not None and workflow_id != task_id:
        raise ConfigurationError(
            f"workflow_id {workflow_id!r} and its alias task_id {task_id!r} disagree"
        )
    wid = workflow_id if workflow_id is not None else task_id
    if wid is not None and (not isinstance(wid, str) or not wid):
        raise ConfigurationError(f"workflow_id must be a non-empty string, got {wid!r}")
    return wid


def _check_timeout(owner: str, timeout: float | None) -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ConfigurationError(f"{owner}: timeout must be > 0 seconds, got {timeout!r}")


class Taskflow:
    """A taskflow app: configuration, the workflows and steps registered on it, and the
    system database they checkpoint into.

    >>> app = Taskflow("shop", database_url="sqlite:///shop.sqlite3")
    """

    def __init__(
        self,
        name: str = "taskflow",
        database_url: str | None = None,
        app_version: str | None = None,
        *,
        broker_url: str | None = None,
        clock: Clock | None = None,
        **settings: Any,
    ) -> None:
        if database_url is not None and broker_url is not None and database_url != broker_url:
            raise ConfigurationError(
                "database_url and its alias broker_url were both given, with different values"
            )
        self.name = name
        self.conf = Config(database_url=database_url or broker_url, app_version=app_version)
        self.conf.update(settings)
        self.clock: Clock = clock or SystemClock()
        self._workflows: dict[str, Workflow[..., Any]] = {}
        self._steps: dict[str, Step[..., Any]] = {}
        self._broker: Broker | None = None
        self._broker_pid = 0
        self._lock = threading.RLock()
        self._version: str | None = None
        self._executor_id: str | None = None
        self._active: set[str] = set()

    def __repr__(self) -> str:
        return f"<Taskflow {self.name!r}>"

    # -- configuration ---------------------------------------------------------------------
    def config_from_object(self, obj: object | str, namespace: str | None = None) -> None:
        """Load settings from a module, module path, class or object (Celery habit)."""
        self.conf.from_object(obj, namespace=namespace)

    @property
    def broker(self) -> Broker:
        """The system database, connected and migrated on first use."""
        broker = self._broker
        if broker is not None:
            return broker
        with self._lock:
            if self._broker is None:
                broker = create_broker(self.conf)
                broker.migrate()
                self._broker = broker
            return self._broker

    def migrate(self) -> int:
        """Apply pending schema migrations now; return how many ran."""
        return self.broker.migrate()

    def close(self) -> None:
        """Release database connections (the app reconnects if used again)."""
        with self._lock:
            if self._broker is not None:
                self._broker.close()
                self._broker = None

    @property
    def app_version(self) -> str:
        """The version recorded on workflows this process starts: the configured one, else
        ``$TASKFLOW_APP_VERSION``, else a hash of the registered workflows' source (fixed at
        first use)."""
        if self._version is None:
            self._version = (
                self.conf.app_version
                or os.environ.get("TASKFLOW_APP_VERSION")
                or self._source_hash()
            )
        return self._version

    def _source_hash(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self._workflows):
            fn = self._workflows[name].fn
            try:
                source = inspect.getsource(fn)
            except (OSError, TypeError):
                # No source (exec, REPL): bytecode and constants, so `return 1` -> `return 2`
                # still changes the version.
                source = repr((fn.__code__.co_code, fn.__code__.co_consts))
            digest.update(name.encode())
            digest.update(source.encode())
        return digest.hexdigest()[:16]

    @property
    def executor_id(self) -> str:
        """Identity of this process on the workflows it runs (``host:pid:start`` unless
        configured). Recomputed after ``fork()``."""
        if self.conf.executor_id:
            return self.conf.executor_id
        pid = os.getpid()
        if self._executor_id is None or self._broker_pid != pid:
            self._executor_id = local_executor_id()
            self._broker_pid = pid
        return self._executor_id

    # -- registration ----------------------------------------------------------------------
    @overload
    def workflow(self, fn: Callable[P, R], /) -> Workflow[P, R]: ...

    @overload
    def workflow(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        max_recovery_attempts: int = 100,
        timeout: float | None = None,
    ) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...

    def workflow(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        max_recovery_attempts: int = 100,
        timeout: float | None = None,
    ) -> Workflow[P, R] | Callable[[Callable[P, R]], Workflow[P, R]]:
        """Register a workflow: ``@app.workflow`` or ``@app.workflow(name=..., ...)``.

        ``name`` defaults to ``module.qualname``; ``queue`` is where ``.delay()`` sends it;
        ``max_recovery_attempts`` crashes are recovered before the workflow is parked;
        ``timeout`` is a durable start-to-completion deadline in seconds.
        """

        def register(f: Callable[P, R]) -> Workflow[P, R]:
            wf_name = name or f"{f.__module__}.{f.__qualname__}"
            wf = Workflow(self, f, wf_name, queue, max_recovery_attempts, timeout)
            with self._lock:
                existing = self._workflows.get(wf_name)
                if existing is not None and existing.fn.__code__ is not f.__code__:
                    raise ConfigurationError(f"a workflow named {wf_name!r} is already registered")
                hashed = not (self.conf.app_version or os.environ.get("TASKFLOW_APP_VERSION"))
                if self._version is not None and existing is None and hashed:
                    log.warning(
                        "workflow %r registered after the app version was fixed (%s); it is "
                        "not part of the version hash",
                        wf_name,
                        self._version,
                    )
                self._workflows[wf_name] = wf
            return wf

        if fn is not None:
            return register(fn)
        return register

    task = workflow
    """Alias of :meth:`workflow`, so Celery code ports by changing the import."""

    @overload
    def step(self, fn: Callable[P, R], /) -> Step[P, R]: ...

    @overload
    def step(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        max_retries: int = 0,
        retry_backoff: float = 0.1,
        retry_backoff_factor: float = 2.0,
        retry_backoff_max: float = 5.0,
        retry_jitter: bool = True,
        autoretry_for: tuple[type[BaseException], ...] = (Exception,),
        timeout: float | None = None,
    ) -> Callable[[Callable[P, R]], Step[P, R]]: ...

    def step(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
        max_retries: int = 0,
        retry_backoff: float = 0.1,
        retry_backoff_factor: float = 2.0,
        retry_backoff_max: float = 5.0,
        retry_jitter: bool = True,
        autoretry_for: tuple[type[BaseException], ...] = (Exception,),
        timeout: float | None = None,
    ) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
        """Register a step: ``@app.step`` or ``@app.step(max_retries=3, ...)``.

        Retries are off by default. The n-th retry waits ``retry_backoff *
        retry_backoff_factor**(n-1)`` seconds, capped at ``retry_backoff_max``, with jitter;
        only errors in ``autoretry_for`` are retried. ``timeout`` abandons a step that runs
        longer, raising ``TimeoutError`` in the workflow.
        """
        policy = RetryPolicy(
            max_retries=max_retries,
            backoff=retry_backoff,
            backoff_factor=retry_backoff_factor,
            backoff_max=retry_backoff_max,
            jitter=retry_jitter,
            autoretry_for=tuple(autoretry_for),
        )

        def register(f: Callable[P, R]) -> Step[P, R]:
            step_name = name or f.__qualname__
            s = Step(f, step_name, policy, timeout, lambda: self.clock)
            with self._lock:
                self._steps[step_name] = s
            return s

        if fn is not None:
            return register(fn)
        return register

    @property
    def workflows(self) -> dict[str, Workflow[..., Any]]:
        """Registered workflows by name (a copy)."""
        return dict(self._workflows)

    def get_workflow(self, name: str) -> Workflow[..., Any]:
        """A registered workflow by name, or :class:`UnknownWorkflowError`."""
        try:
            return self._workflows[name]
        except KeyError:
            known = ", ".join(sorted(self._workflows)) or "none"
            raise UnknownWorkflowError(
                f"no workflow named {name!r} is registered in app {self.name!r} (known: {known})"
            ) from None

    # -- handles ---------------------------------------------------------------------------
    def _handle(
        self, workflow_id: str, wf: Workflow[..., Any] | None = None
    ) -> WorkflowHandle[Any]:
        return WorkflowHandle(
            self.broker,
            workflow_id,
            decode_result=wf._decode_result if wf is not None else None,
            poll_interval=self.conf.result_poll_interval,
            clock=self.clock,
        )

    def retrieve(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle on any workflow by id (results decode with the registered workflow's
        return type when it is registered here)."""
        row = self.broker.get_workflow(workflow_id)
        if row is None:
            raise UnknownWorkflowError(f"no workflow with id {workflow_id!r}")
        return self._handle(workflow_id, self._workflows.get(row.name))

    AsyncResult = retrieve
    """Celery's name for :meth:`retrieve`."""

    # -- direct execution ------------------------------------------------------------------
    def _run_direct(
        self,
        wf: Workflow[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        workflow_id: str | None = None,
        timeout: float | None = None,
        user: str | None = None,
        raise_error: bool = True,
    ) -> Any:
        """Run ``wf`` durably here and return its result (raise its error), or with
        ``raise_error=False`` return its id, whatever the outcome."""
        wid, output, error = self._start(wf, args, kwargs, workflow_id, timeout, user)
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
        started = self.broker.start_workflow(new, now)
        if started.created:
            final = self._execute(wf, wid, call_args, call_kwargs, row_or_new=new)
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
        return wid, final.output, error

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
        return (
            owner == self.executor_id
            or is_dead_local_executor(owner)
            or (parent is not None and row.parent_id == parent.workflow_id)
        )

    def _take_over(self, wf: Workflow[..., Any], workflow_id: str, owner: str) -> Outcome | None:
        """Claim a PENDING workflow from ``owner`` (counting one attempt) and run it here, or
        park it past ``max_recovery_attempts``. None if someone else claimed it first."""
        row = self.broker.claim_for_recovery(
            workflow_id, owner, self.executor_id, now_ms(self.clock)
        )
        if row is None:
            return None
        if row.attempts - 1 > wf.max_recovery_attempts:
            self.broker.set_status(
                row.id, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED, Status.PENDING, now_ms(self.clock)
            )
            log.warning(
                "workflow %r (%s) parked as MAX_RECOVERY_ATTEMPTS_EXCEEDED after %d attempts",
                row.id,
                row.name,
                row.attempts,
            )
            return Outcome(Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED)
        log.info("resuming workflow %r (%s), attempt %d", row.id, row.name, row.attempts)
        args, kwargs = wf.signature.decode_inputs(row.inputs)
        return self._execute(wf, row.id, args, kwargs, row_or_new=row)

    def _execute(
        self,
        wf: Workflow[..., Any],
        workflow_id: str,
        args: list[Any],
        kwargs: dict[str, Any],
        row_or_new: WorkflowRow | NewWorkflow,
    ) -> Outcome:
        """Run a workflow this process owns to its end; return its final outcome."""
        with self._lock:
            if workflow_id in self._active:
                raise WorkflowConflictError(f"workflow {workflow_id!r} is already running here")
            self._active.add(workflow_id)
        try:
            recorded: dict[int, StepRow] = {}
            attempts = 1
            if isinstance(row_or_new, WorkflowRow):  # resuming: replay what was recorded
                recorded = {s.step_id: s for s in self.broker.load_steps(workflow_id)}
                attempts = row_or_new.attempts
            ctx = WorkflowContext(
                broker=self.broker,
                clock=self.clock,
                workflow_id=workflow_id,
                name=wf.name,
                executor_id=self.executor_id,
                app_version=row_or_new.app_version or self.app_version,
                attempt=attempts,
                queue=row_or_new.queue,
                user=row_or_new.user,
                deadline_ms=row_or_new.deadline_at,
                recorded=recorded,
            )
            outcome = execute(ctx, wf.fn, args, kwargs)
        finally:
            with self._lock:
                self._active.discard(workflow_id)
        if outcome.recorded:
            return outcome
        # Someone else decided the outcome (a cancel, or another executor that took it over
        # while this one looked dead): the stored row is the truth.
        return _stored(self._handle(workflow_id, wf).wait())

    # -- recovery --------------------------------------------------------------------------
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
                    "not recovering workflow %r: %r is not registered in app %r",
                    ref.id,
                    ref.name,
                    self.name,
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


__all__ = ["Taskflow", "Workflow"]
