"""A registered workflow (Celery's *task*): calling it, and starting it from producers.

``wf(...)`` and ``wf.apply(...)`` run it durably in this process; ``wf.delay(...)``,
``wf.apply_async(...)`` and ``wf.delay_many(...)`` enqueue it for workers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

from taskflow.errors import ConfigurationError, MaxRetriesExceededError, Retry
from taskflow.handle import WorkflowHandle
from taskflow.queues import validate_queue_name
from taskflow.retry import WorkflowRetryPolicy
from taskflow.serialization import Signature
from taskflow.workflow import WorkflowContext, current_context

if TYPE_CHECKING:
    from taskflow.app import Taskflow

P = ParamSpec("P")
R = TypeVar("R")

DedupPolicy = Literal["reject", "return_existing"]


@dataclass(frozen=True)
class Request:
    """What a bound task (``bind=True``) reads from ``self.request``, as in Celery."""

    id: str | None = None
    """The workflow id (None when the function is called outside any workflow)."""
    name: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    """Workflow-level retries so far."""
    attempt: int = 1
    """Executions of this run: 1, then +1 per crash recovery."""
    queue: str | None = None
    user: str | None = None
    app_version: str | None = None
    is_eager: bool = False
    called_directly: bool = True
    """True outside a workflow (a plain function call), as in Celery."""

    @property
    def workflow_id(self) -> str | None:
        """Alias of :attr:`id`."""
        return self.id


@dataclass(frozen=True)
class EnqueueOptions:
    """The validated options of one ``apply_async`` call."""

    workflow_id: str | None = None
    queue: str | None = None
    priority: int | None = None
    countdown: float | None = None
    eta: datetime | None = None
    expires: float | datetime | None = None
    dedup_id: str | None = None
    dedup_policy: DedupPolicy = "reject"
    partition_key: str | None = None
    timeout: float | None = None
    app_version: str | None = None
    user: str | None = None


class Workflow(Generic[P, R]):
    """A function registered with ``@app.workflow`` (or ``@app.task``).

    Calling it runs it durably in this process and returns its result; ``delay`` and
    ``apply_async`` enqueue it for a worker and return a handle.
    """

    def __init__(
        self,
        app: Taskflow,
        fn: Callable[..., R],
        name: str,
        queue: str | None,
        max_recovery_attempts: int,
        timeout: float | None,
        *,
        bind: bool = False,
        retry_policy: WorkflowRetryPolicy | None = None,
        soft_time_limit: float | None = None,
        time_limit: float | None = None,
        priority: int | None = None,
    ) -> None:
        owner = f"workflow {name!r}"
        if not isinstance(max_recovery_attempts, int) or max_recovery_attempts < 0:
            raise ConfigurationError(
                f"{owner}: max_recovery_attempts must be an integer >= 0, "
                f"got {max_recovery_attempts!r}"
            )
        check_seconds(owner, "timeout", timeout)
        check_seconds(owner, "soft_time_limit", soft_time_limit)
        check_seconds(owner, "time_limit", time_limit)
        if soft_time_limit is not None and time_limit is not None and soft_time_limit > time_limit:
            raise ConfigurationError(
                f"{owner}: soft_time_limit ({soft_time_limit}) must not exceed time_limit "
                f"({time_limit})"
            )
        if queue is not None:
            try:
                validate_queue_name(queue)
            except ConfigurationError as exc:
                raise ConfigurationError(f"{owner}: {exc}") from None
        check_priority(priority)
        self.app = app
        self.fn = fn
        self.name = name
        self.queue = queue
        self.max_recovery_attempts = max_recovery_attempts
        self.timeout = timeout
        self.bind = bind
        self.retry_policy = (retry_policy or WorkflowRetryPolicy()).validate(owner)
        self.soft_time_limit = soft_time_limit
        self.time_limit = time_limit
        self.priority = priority
        self.signature = Signature(fn, skip_first=bind)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<taskflow workflow {self.name!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.app._run_direct(self, args, kwargs)  # type: ignore[no-any-return]

    @property
    def max_retries(self) -> int | None:
        """Celery's ``task.max_retries``."""
        return self.retry_policy.max_retries

    def _callable(self) -> Callable[..., Any]:
        """The function as the executor calls it (with ``self`` first when bound)."""
        if self.bind:
            return functools.partial(self.fn, self)
        return self.fn

    # -- Celery's bound-task API -------------------------------------------------------------
    @property
    def request(self) -> Request:
        """The running workflow's request (``self.request`` in a bound task)."""
        return request_of(current_context())

    def retry(
        self,
        exc: BaseException | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        max_retries: int | None = None,
        **_ignored: Any,
    ) -> Retry:
        """Run the workflow again later, from its last completed step (Celery's
        ``self.retry``). Raises :class:`~taskflow.errors.Retry`; use ``raise self.retry(...)``
        as in Celery. With no retries left it raises ``exc`` (or
        :class:`MaxRetriesExceededError`)."""
        ctx = current_context()
        if ctx is None:
            raise ConfigurationError(f"{self.name}.retry() was called outside a running workflow")
        if not self.retry_policy.retries_left(ctx.retries, max_retries):
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"workflow {ctx.workflow_id!r} ({self.name}) asked for a retry after "
                f"{ctx.retries} retries; max_retries is "
                f"{max_retries if max_retries is not None else self.max_retries}"
            )
        if eta is not None:
            # A naive eta is UTC, as in apply_async (Celery's enable_utc).
            aware = eta if eta.tzinfo is not None else eta.replace(tzinfo=UTC)
            when = max(0.0, aware.timestamp() - self.app.clock.now())
        elif countdown is not None:
            when = float(countdown)
        else:
            when = float(self.retry_policy.default_retry_delay)
        retry = Retry(f"retry in {when:g}s", exc=exc, when=when)
        retry.checked = True
        raise retry

    # -- running here --------------------------------------------------------------------------
    def apply(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        workflow_id: str | None = None,
        task_id: str | None = None,
        timeout: float | None = None,
        user: str | None = None,
        **_celery_options: Any,
    ) -> WorkflowHandle[R]:
        """Run the workflow durably in this process and return its finished handle (Celery's
        ``apply``). With an id that already exists, return that workflow's handle instead of
        running it again (exactly-once processing of an event)."""
        wid = pick_id(workflow_id, task_id)
        check_seconds(f"workflow {self.name!r}", "timeout", timeout)
        done_id = self.app._run_direct(
            self, tuple(args), dict(kwargs or {}), wid, timeout, user, raise_error=False
        )
        return self.app._handle(done_id, self)

    # -- enqueueing ----------------------------------------------------------------------------
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """Enqueue with default options (Celery's ``delay``); returns a handle at once."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        workflow_id: str | None = None,
        task_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        expires: float | datetime | None = None,
        dedup_id: str | None = None,
        dedup_policy: DedupPolicy = "reject",
        partition_key: str | None = None,
        timeout: float | None = None,
        app_version: str | None = None,
        user: str | None = None,
        connection: object | None = None,
    ) -> WorkflowHandle[R]:
        """Enqueue the workflow for a worker and return its handle.

        ``workflow_id`` (alias ``task_id``) is the idempotency key: an existing id returns
        that workflow's handle. ``countdown`` (seconds) or ``eta`` (datetime) delay the start
        (status DELAYED until then); ``expires`` (seconds or datetime) cancels it if it has
        not started by then. ``dedup_id`` allows one waiting-or-running workflow per queue and
        id (``dedup_policy="return_existing"`` returns that one instead of raising
        :class:`WorkflowDeduplicatedError`). ``connection`` (psycopg, sqlite3 or SQLAlchemy)
        writes inside the caller's transaction: nothing exists until it commits.
        """
        options = EnqueueOptions(
            workflow_id=pick_id(workflow_id, task_id),
            queue=queue,
            priority=priority,
            countdown=countdown,
            eta=eta,
            expires=expires,
            dedup_id=dedup_id,
            dedup_policy=dedup_policy,
            partition_key=partition_key,
            timeout=timeout,
            app_version=app_version,
            user=user,
        )
        return self.app._enqueue(self, [(tuple(args), dict(kwargs or {}))], options, connection)[0]

    def delay_many(
        self,
        calls: Iterable[Sequence[Any] | Mapping[str, Any]],
        *,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        expires: float | datetime | None = None,
        partition_key: str | None = None,
        timeout: float | None = None,
        app_version: str | None = None,
        user: str | None = None,
        connection: object | None = None,
    ) -> list[WorkflowHandle[R]]:
        """Enqueue many workflows in one round trip and one commit. Each item of ``calls`` is
        a tuple of positional arguments or a mapping of keyword arguments; every workflow
        gets a new id and the same options."""
        batch: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for call in calls:
            if isinstance(call, Mapping):
                batch.append(((), dict(call)))
            elif isinstance(call, list | tuple):
                batch.append((tuple(call), {}))
            else:
                raise ConfigurationError(
                    f"delay_many() of {self.name!r}: each call must be a tuple of arguments "
                    f"or a dict of keyword arguments, got {type(call).__name__}: {call!r}"
                )
        options = EnqueueOptions(
            queue=queue,
            priority=priority,
            countdown=countdown,
            eta=eta,
            expires=expires,
            partition_key=partition_key,
            timeout=timeout,
            app_version=app_version,
            user=user,
        )
        return self.app._enqueue(self, batch, options, connection)

    def _decode_result(self, raw: str) -> Any:
        return self.signature.decode_result(raw)


def request_of(ctx: WorkflowContext | None) -> Request:
    """The request a bound task sees for the running workflow ``ctx`` (an empty one outside
    any workflow)."""
    if ctx is None:
        return Request()
    return Request(
        id=ctx.workflow_id,
        name=ctx.name,
        args=ctx.args,
        kwargs=dict(ctx.kwargs),
        retries=ctx.retries,
        attempt=ctx.attempt,
        queue=ctx.queue,
        user=ctx.user,
        app_version=ctx.app_version,
        is_eager=ctx.eager,
        called_directly=False,
    )


def pick_id(workflow_id: str | None, task_id: str | None) -> str | None:
    """The id from ``workflow_id`` or its alias ``task_id``."""
    if workflow_id is not None and task_id is not None and workflow_id != task_id:
        raise ConfigurationError(
            f"workflow_id {workflow_id!r} and its alias task_id {task_id!r} disagree"
        )
    wid = workflow_id if workflow_id is not None else task_id
    if wid is not None and (not isinstance(wid, str) or not wid):
        raise ConfigurationError(f"workflow_id must be a non-empty string, got {wid!r}")
    return wid


def check_seconds(owner: str, option: str, value: float | None) -> None:
    """Refuse a duration that is not a positive number of seconds."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
    ):
        raise ConfigurationError(f"{owner}: {option} must be > 0 seconds, got {value!r}")


MAX_PRIORITY = 2_147_483_647


def check_priority(priority: int | None) -> None:
    """Priorities are 1..2_147_483_647, lower first."""
    if priority is not None and (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not 1 <= priority <= MAX_PRIORITY
    ):
        raise ConfigurationError(
            f"priority must be an integer from 1 to {MAX_PRIORITY} (lower runs first), "
            f"got {priority!r}"
        )


__all__ = [
    "MAX_PRIORITY",
    "DedupPolicy",
    "EnqueueOptions",
    "Request",
    "Workflow",
    "check_priority",
    "check_seconds",
    "pick_id",
    "request_of",
]
