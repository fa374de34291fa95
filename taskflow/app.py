"""``Taskflow``: the app, its configuration, its registry of workflows, steps and queues,
and enqueueing. Running workflows lives in :mod:`taskflow.execution`."""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, overload

from taskflow import control, messaging, shared, streams
from taskflow.app_schedules import ScheduleMixin
from taskflow.broker import Broker, create_broker
from taskflow.clock import Clock, SystemClock, now_ms
from taskflow.config import Config
from taskflow.cron import crontab
from taskflow.debouncer import Debouncer
from taskflow.enqueue import Call, new_workflows, resolve, validate
from taskflow.errors import (
    ConfigurationError,
    UnknownQueueError,
    UnknownWorkflowError,
)
from taskflow.execution import ExecutionMixin
from taskflow.handle import WorkflowHandle
from taskflow.heartbeat import Heartbeat
from taskflow.management import ManagementMixin
from taskflow.models import StepRow
from taskflow.queues import DEFAULT_QUEUE, Queue, RateLimit, parse_rate_limit, validate_queue_name
from taskflow.recovery import local_executor_id
from taskflow.retry import RetryPolicy, WorkflowRetryPolicy
from taskflow.schedules import ScheduleDraft, Schedules
from taskflow.serialization import decode, encode
from taskflow.step import Step
from taskflow.task import EnqueueOptions, Workflow
from taskflow.workflow import current_context, forbid_in_step

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("taskflow")


class Taskflow(ExecutionMixin, ManagementMixin, ScheduleMixin):
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
        self._queues: dict[str, Queue] = {DEFAULT_QUEUE: Queue(DEFAULT_QUEUE)}
        # Queues recorded in the database by workers (read on a miss), for producers that do
        # not declare every queue they use.
        self._known_queues: dict[str, Queue] = {}
        self._presence: Heartbeat | None = None
        self._shared_executor = False
        self._worker_executor_id: str | None = None
        self._discover: list[tuple[Iterable[str] | Callable[[], Iterable[str]], str]] = []
        self._declared_schedules: dict[str, tuple[ScheduleDraft, bool]] = {}
        self._schedules: Schedules | None = None
        shared.register_app(self)

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
        """Stop this process's heartbeat and release database connections (the app
        reconnects if used again)."""
        presence, self._presence = self._presence, None
        if presence is not None and presence.running:
            presence.stop(remove=True)
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
            self.finalize()
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
        if self._worker_executor_id:
            return self._worker_executor_id
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
        bind: Literal[True],
        name: str | None = None,
        queue: str | None = None,
        max_recovery_attempts: int = 100,
        timeout: float | None = None,
        priority: int | None = None,
        max_retries: int | None = 3,
        autoretry_for: Sequence[type[BaseException]] = (),
        retry_backoff: bool | float = False,
        retry_backoff_max: float = 600.0,
        retry_jitter: bool = True,
        default_retry_delay: float = 180.0,
        soft_time_limit: float | None = None,
        time_limit: float | None = None,
        schedule: str | crontab | float | timedelta | None = None,
        tz: str | None = None,
        backfill: bool = False,
    ) -> Callable[[Callable[Concatenate[Any, P], R]], Workflow[P, R]]: ...

    @overload
    def workflow(
        self,
        fn: None = None,
        /,
        *,
        bind: Literal[False] = False,
        name: str | None = None,
        queue: str | None = None,
        max_recovery_attempts: int = 100,
        timeout: float | None = None,
        priority: int | None = None,
        max_retries: int | None = 3,
        autoretry_for: Sequence[type[BaseException]] = (),
        retry_backoff: bool | float = False,
        retry_backoff_max: float = 600.0,
        retry_jitter: bool = True,
        default_retry_delay: float = 180.0,
        soft_time_limit: float | None = None,
        time_limit: float | None = None,
        schedule: str | crontab | float | timedelta | None = None,
        tz: str | None = None,
        backfill: bool = False,
    ) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...

    def workflow(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        bind: bool = False,
        name: str | None = None,
        queue: str | None = None,
        max_recovery_attempts: int = 100,
        timeout: float | None = None,
        priority: int | None = None,
        max_retries: int | None = 3,
        autoretry_for: Sequence[type[BaseException]] = (),
        retry_backoff: bool | float = False,
        retry_backoff_max: float = 600.0,
        retry_jitter: bool = True,
        default_retry_delay: float = 180.0,
        soft_time_limit: float | None = None,
        time_limit: float | None = None,
        schedule: str | crontab | float | timedelta | None = None,
        tz: str | None = None,
        backfill: bool = False,
    ) -> Any:
        """Register a workflow: ``@app.workflow`` or ``@app.workflow(name=..., ...)``.

        ``name`` defaults to ``module.qualname``; ``queue`` is where ``.delay()`` sends it
        (declared implicitly); ``max_recovery_attempts`` crashes are recovered before the
        workflow is parked; ``timeout`` is a durable start-to-completion deadline in seconds.

        Celery options: ``bind=True`` passes the workflow itself first (``self.request``,
        ``self.retry()``); an exception in ``autoretry_for`` (or ``self.retry()``) runs the
        workflow again later from its last completed step, up to ``max_retries`` times,
        waiting ``default_retry_delay`` or, with ``retry_backoff``, an exponential backoff
        capped at ``retry_backoff_max`` with ``retry_jitter``. In a worker,
        ``soft_time_limit`` raises :class:`SoftTimeLimitExceeded` inside the workflow and
        ``time_limit`` ends the process running it, recording :class:`TimeLimitExceeded`.

        ``schedule`` (cron with 5 fields or 6 with seconds first, a :class:`crontab`, or an
        interval in seconds) makes the beat start it at each time, in time zone ``tz``
        (default: ``conf.timezone``), as ``fn(scheduled_at, context)``; ``backfill=True``
        fires the times a stopped beat missed (see docs/schedules.md).
        """
        policy = WorkflowRetryPolicy(
            max_retries=max_retries,
            autoretry_for=tuple(autoretry_for),
            backoff=retry_backoff,
            backoff_max=retry_backoff_max,
            jitter=retry_jitter,
            default_retry_delay=default_retry_delay,
        )

        def register(f: Callable[..., Any]) -> Workflow[..., Any]:
            wf_name = name or f"{f.__module__}.{f.__qualname__}"
            wf: Workflow[..., Any] = Workflow(
                self,
                f,
                wf_name,
                queue,
                max_recovery_attempts,
                timeout,
                bind=bind,
                retry_policy=policy,
                soft_time_limit=soft_time_limit,
                time_limit=time_limit,
                priority=priority,
            )
            if schedule is not None:
                self.declare_schedule(wf, f, schedule, tz, backfill, queue)
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
        self.finalize()
        return dict(self._workflows)

    def autodiscover_tasks(
        self, packages: Iterable[str] | Callable[[], Iterable[str]], related_name: str = "tasks"
    ) -> None:
        """Import ``<package>.<related_name>`` for each package (Celery habit), so their
        ``@app.task`` / ``@shared_task`` functions register. Done when the app is finalized:
        by the worker at start, or on first use of the registry; a package without such a
        module is skipped."""
        if isinstance(packages, str):
            packages = [packages]
        self._discover.append((packages, related_name))

    def finalize(self) -> None:
        """Run pending ``autodiscover_tasks`` imports now (idempotent). A callable given to
        ``autodiscover_tasks`` is called here, as Celery does, so it may read settings that
        are only ready later (Django's INSTALLED_APPS)."""
        while self._discover:
            packages, related_name = self._discover.pop(0)
            names = packages() if callable(packages) else packages
            shared.autodiscover([names] if isinstance(names, str) else list(names), related_name)

    def get_workflow(self, name: str) -> Workflow[..., Any]:
        """A registered workflow by name, or :class:`UnknownWorkflowError`."""
        self.finalize()
        try:
            return self._workflows[name]
        except KeyError:
            known = ", ".join(sorted(self._workflows)) or "none"
            raise UnknownWorkflowError(
                f"no workflow named {name!r} is registered in app {self.name!r} (known: {known})"
            ) from None

    # -- queues ----------------------------------------------------------------------------
    def queue(
        self,
        name: str,
        concurrency: int | None = None,
        worker_concurrency: int | None = None,
        rate_limit: str | tuple[int, float] | RateLimit | None = None,
        partitioned: bool = False,
    ) -> Queue:
        """Declare a queue (``default`` always exists). Declaring the same name again with
        the same settings returns it; with other settings raises ConfigurationError."""
        spec = Queue(
            validate_queue_name(name),
            concurrency=concurrency,
            worker_concurrency=worker_concurrency,
            rate_limit=parse_rate_limit(rate_limit),
            partitioned=partitioned,
        )
        with self._lock:
            existing = self._queues.get(spec.name)
            if existing is not None and existing != spec and spec.name != DEFAULT_QUEUE:
                raise ConfigurationError(
                    f"queue {spec.name!r} is already declared with other settings: {existing}"
                )
            if existing is None or spec.name == DEFAULT_QUEUE:
                self._queues[spec.name] = spec
        return self._queues[spec.name]

    @property
    def queues(self) -> dict[str, Queue]:
        """Declared queues by name, including ``default`` and those named by workflows."""
        self.finalize()
        found = dict(self._queues)
        for wf in self._workflows.values():
            if wf.queue is not None and wf.queue not in found:
                found[wf.queue] = Queue(wf.queue)
        return found

    def _check_queue(self, name: str) -> Queue:
        """The declaration of queue ``name`` (from the database, as workers recorded it, if
        this app does not declare it), or :class:`UnknownQueueError`."""
        spec = self._queues.get(name)
        if spec is not None:
            return spec
        declared = self.queues
        if name in declared:
            return declared[name]
        if name in self._known_queues:
            return self._known_queues[name]
        self._known_queues = {n: r.queue for n, r in self.broker.queue_specs().items()}
        if name in self._known_queues:
            return self._known_queues[name]
        raise UnknownQueueError(
            f"queue {name!r} is not declared in app {self.name!r} (declare it with "
            f"app.queue({name!r}) or a workflow's queue=) and no worker has recorded it in the "
            f"database; known queues: {', '.join(sorted(set(declared) | set(self._known_queues)))}"
        )

    # -- enqueueing ------------------------------------------------------------------------
    def _enqueue(
        self,
        wf: Workflow[..., Any],
        calls: Sequence[Call],
        options: EnqueueOptions,
        connection: object | None,
    ) -> list[WorkflowHandle[Any]]:
        """Write ``calls`` as ENQUEUED (or DELAYED) workflows and return their handles.

        Inside a workflow the enqueue is a step of the parent: the children's ids derive
        from the parent's, and a replay returns the same handles without writing again.
        """
        if self.conf.task_always_eager and connection is None:
            return [
                self._handle(
                    self._run_direct(
                        wf,
                        args,
                        kwargs,
                        options.workflow_id,
                        options.timeout,
                        options.user,
                        raise_error=False,
                        eager=True,
                    ),
                    wf,
                )
                for args, kwargs in calls
            ]
        forbid_in_step(f"enqueueing workflow {wf.name!r}")
        queue = options.queue or wf.queue or DEFAULT_QUEUE
        validate(wf, options, self._check_queue(queue))
        parent = current_context()
        step_id: int | None = None
        ids: list[str] | None = [options.workflow_id] if options.workflow_id else None
        if parent is not None:
            if connection is not None:
                raise ConfigurationError(
                    "connection= cannot be used inside a workflow: the enqueue is a step of "
                    "the workflow and commits with it"
                )
            step_name = f"{wf.name}.apply_async"
            step_id, recorded = parent.take_step_id(step_name)
            if recorded is not None:
                return [self._handle(i, wf) for i in decode(recorded.output or "[]", list[str])]
            if ids is None:
                base = f"{parent.workflow_id}-{step_id}"
                ids = [base] if len(calls) == 1 else [f"{base}-{i}" for i in range(len(calls))]
        now = now_ms(self.clock)
        news = new_workflows(
            wf,
            calls,
            options,
            queue,
            now,
            ids=ids,
            parent_id=parent.workflow_id if parent else None,
            user=parent.user if parent else None,
        )
        broker = self.broker
        if connection is not None:
            results = broker.enqueue_on(connection, news, now)
        else:
            results = broker.enqueue(news, now)
        done = resolve(broker, results, options, queue, wf.name)
        if parent is not None and step_id is not None:
            parent.checkpoint(
                StepRow(
                    step_id=step_id,
                    name=f"{wf.name}.apply_async",
                    output=encode(done),
                    child_workflow_id=done[0] if len(done) == 1 else None,
                    started_at=now,
                    finished_at=now_ms(self.clock),
                )
            )
        return [self._handle(i, wf) for i in done]

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

    def _workflow_handle(self, workflow_id: str, name: str | None) -> WorkflowHandle[Any]:
        return self._handle(workflow_id, self._workflows.get(name) if name else None)

    def retrieve(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle on any workflow by id (results decode with the registered workflow's
        return type when it is registered here)."""
        row = self.broker.get_workflow(workflow_id)
        if row is None:
            raise UnknownWorkflowError(f"no workflow with id {workflow_id!r}")
        return self._handle(workflow_id, self._workflows.get(row.name))

    AsyncResult = retrieve
    """Celery's name for :meth:`retrieve`."""

    # -- debouncing ------------------------------------------------------------------------
    @overload
    def debouncer(
        self,
        workflow: Workflow[P, R],
        timeout: float | timedelta | None = None,
        *,
        queue: str | None = None,
    ) -> Debouncer[P, R]: ...

    @overload
    def debouncer(
        self,
        workflow: str,
        timeout: float | timedelta | None = None,
        *,
        queue: str | None = None,
    ) -> Debouncer[..., Any]: ...

    def debouncer(
        self,
        workflow: Workflow[..., Any] | str,
        timeout: float | timedelta | None = None,
        *,
        queue: str | None = None,
    ) -> Debouncer[..., Any]:
        """A :class:`Debouncer` of a registered workflow (the object or its name):
        ``.debounce(key, delay, *args, **kwargs)`` starts it ``delay`` seconds after the last
        call for ``key``, with that call's arguments; ``timeout`` (seconds) caps the wait from
        the first call. The workflows wait in ``queue``, else the workflow's queue, else
        ``default`` (not a partitioned queue). See ``docs/debouncing.md``."""
        name = workflow if isinstance(workflow, str) else getattr(workflow, "name", workflow)
        if not isinstance(name, str):
            raise ConfigurationError(
                f"debouncer: give a registered workflow or its name, got {workflow!r}"
            )
        wf = self.get_workflow(name)
        if isinstance(workflow, Workflow) and workflow is not wf:
            raise ConfigurationError(
                f"debouncer: workflow {name!r} is registered on another app, not on {self.name!r}"
            )
        target = validate_queue_name(queue) if queue is not None else wf.queue or DEFAULT_QUEUE

        def check() -> None:
            if self._check_queue(target).partitioned:
                raise ConfigurationError(
                    f"debouncer of workflow {name!r}: queue {target!r} is partitioned, and "
                    "debounced workflows have no partition key; use another queue"
                )

        def run_eagerly(
            args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> WorkflowHandle[Any] | None:
            if not self.conf.task_always_eager:
                return None
            return self._handle(
                self._run_direct(wf, args, kwargs, raise_error=False, eager=True), wf
            )

        return Debouncer(
            name,
            broker=lambda: self.broker,
            clock=self.clock,
            queue=target,
            encode_inputs=lambda args, kwargs: wf.signature.encode_inputs(
                args, kwargs, f"workflow {name!r}"
            ),
            handle=lambda workflow_id: self._handle(workflow_id, wf),
            timeout=timeout,
            priority=wf.priority,
            workflow_timeout=wf.timeout,
            check=check,
            run_eagerly=run_eagerly,
        )

    # -- control ---------------------------------------------------------------------------
    def cancel(self, *ids: str) -> list[str]:
        """Cancel workflows by id, and all their descendants, in one statement.

        Every given workflow still ENQUEUED, DELAYED or PENDING, and every descendant of a
        given workflow (at any depth) still in one of those statuses, becomes CANCELLED. A
        waiting one never starts; a running one stops at its next step checkpoint (the step
        in flight finishes and its outcome is kept; nothing after it runs). Finished and
        unknown workflows are skipped. Returns the ids this call cancelled: the given ones
        first, in order, then the descendants, so ``set(ids) - set(result)`` are those that
        had finished or do not exist. ``app.resume(*result)`` undoes it.
        """
        return control.cancel(self.broker, self.clock, ids)

    def resume(self, *ids: str, queue: str | None = None) -> list[WorkflowHandle[Any]]:
        """Run CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflows again from their
        last completed step, through a queue, and return their handles.

        They become ENQUEUED on ``queue`` (a queue of this app or one a worker recorded),
        else on their own queue, else on ``default`` (a workflow run directly has none); a
        workflow whose delay has not passed yet becomes DELAYED until then. Completed steps
        are replayed from their checkpoints; for an ERROR workflow the last step runs again
        when its error is what ended the workflow. Recovery attempts and retries start over,
        and a ``timeout`` counts again from the next start.

        All or nothing: :class:`UnknownWorkflowError` names ids that do not exist and
        :class:`WorkflowStatusError` those in another status (SUCCESS, or still waiting or
        running); then nothing is resumed. Children cancelled with a parent are not resumed
        with it: pass their ids too (``app.cancel`` returned them).
        """
        if queue is not None:
            name = validate_queue_name(queue)
            if self._check_queue(name).partitioned:
                raise ConfigurationError(
                    f"resume: queue {name!r} is partitioned, and a resumed workflow has no "
                    "partition key there; resume it on its own queue instead"
                )
        refs = control.resume(self.broker, self.clock, ids, queue)
        return [self._handle(r.id, self._workflows.get(r.name)) for r in refs]

    def set_delay(
        self, workflow_id: str, seconds: float | None = None, until: datetime | None = None
    ) -> None:
        """Move the start of a DELAYED workflow to ``seconds`` from now or to ``until`` (a
        datetime; naive means UTC, as for ``eta``); at or before now it becomes ENQUEUED at
        once, and workers are woken.

        Give exactly one of them, else :class:`ConfigurationError`. Raises
        :class:`WorkflowStatusError` when the workflow is not DELAYED (naming its status)
        and :class:`UnknownWorkflowError` when it does not exist.
        """
        control.set_delay(self.broker, self.clock, workflow_id, seconds, until)

    # -- messages and events ---------------------------------------------------------------
    def send(
        self,
        workflow_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Send ``message`` (any value msgspec JSON encodes) to workflow ``workflow_id``,
        for its ``taskflow.recv(topic)``. Messages are delivered exactly once, in send order
        per topic; they wait in the inbox until received, also while the receiver is not
        running yet. With ``idempotency_key`` a repeated call sends nothing more.

        Called from workflow code this is ``taskflow.send`` (a recorded step). Raises
        :class:`UnknownWorkflowError` when no workflow has that id.
        """
        ctx = current_context()
        if ctx is not None:
            messaging.send(workflow_id, message, topic)
            return
        messaging.send_outside(
            self.broker, self.clock, workflow_id, message, topic, idempotency_key
        )

    def get_event(
        self, workflow_id: str, key: str, timeout: float | None = messaging.DEFAULT_TIMEOUT
    ) -> Any:
        """The latest value workflow ``workflow_id`` published for event ``key``
        (``taskflow.set_event``), waiting up to ``timeout`` seconds (None: without limit)
        for the first one; None when none is set by then or the workflow finished without
        setting it. Values come back as JSON types (a datetime as its ISO string).

        Called from workflow code this is ``taskflow.get_event`` (a recorded step).
        """
        if current_context() is not None:
            return messaging.get_event(workflow_id, key, timeout)
        return messaging.get_event_outside(self.broker, self.clock, workflow_id, key, timeout)

    def read_stream(
        self, workflow_id: str, key: str, timeout: float | None = None
    ) -> Iterator[Any]:
        """The values workflow ``workflow_id`` writes to its stream ``key``
        (``taskflow.write_stream``), as JSON types, from the first one, in order, waiting
        for new ones as they come. Ends after ``taskflow.close_stream(key)``, or once the
        workflow has finished and every value it wrote was yielded; each call starts from
        the beginning again. ``timeout`` bounds each wait for the next value (the built-in
        :class:`TimeoutError`). Raises :class:`UnknownWorkflowError` when no workflow has
        that id. Never a recorded step, even from workflow code.
        """
        return streams.read_stream(self.broker, self.clock, workflow_id, key, timeout)


__all__ = ["Taskflow", "Workflow"]
