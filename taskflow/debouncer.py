"""Debouncing: run a workflow once a burst of calls for one key has gone quiet.

``app.debouncer(wf, timeout=None).debounce(key, delay, *args, **kwargs)`` writes a DELAYED
workflow the first time a key is seen; each later call for that key, while the workflow has
not started, replaces its arguments and moves its start to ``delay`` seconds after that call,
never later than ``timeout`` seconds after the first call. Once it has started, the next call
begins a new cycle with a new workflow.

:class:`Debouncer` needs only a broker, a clock, the workflow's name and queue, and a way to
encode arguments, so a producer without the workflows' code (the planned ``Client``) builds
one the same way the app does. The one transaction that decides "push back or start anew"
is the broker's :meth:`~taskflow.broker.base.Broker.debounce`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar

from taskflow.broker.base import Broker, DebounceResult
from taskflow.clock import Clock, now_ms
from taskflow.errors import ConfigurationError
from taskflow.handle import WorkflowHandle
from taskflow.models import NewWorkflow, StepRow
from taskflow.serialization import decode, encode
from taskflow.status import Status
from taskflow.workflow import current_context, forbid_in_step

P = ParamSpec("P")
R = TypeVar("R")

EncodeInputs = Callable[[tuple[Any, ...], dict[str, Any]], str]
"""Turns a call's arguments into the stored JSON text (raising SerializationError)."""

RunEagerly = Callable[[tuple[Any, ...], dict[str, Any]], "WorkflowHandle[Any] | None"]
"""Runs the call inline and returns its finished handle when the app runs work eagerly
(``task_always_eager``); returns None to debounce as usual."""


def _seconds(value: object) -> float | None:
    """``value`` as finite seconds (a number or a ``timedelta``), else None."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def check_key(owner: str, key: object) -> str:
    """A debounce key must be a non-empty string."""
    if not isinstance(key, str) or not key:
        raise ConfigurationError(
            f"{owner}: the debounce key must be a non-empty string, got {key!r}"
        )
    return key


def check_delay(owner: str, delay: object) -> int:
    """``delay`` (seconds >= 0, or a ``timedelta``) in milliseconds."""
    seconds = _seconds(delay)
    if seconds is None or seconds < 0:
        raise ConfigurationError(
            f"{owner}: delay must be a number of seconds >= 0 (or a timedelta), got {delay!r}"
        )
    return int(seconds * 1000)


def check_timeout(owner: str, timeout: object) -> int | None:
    """The debouncer ``timeout`` (seconds > 0, a ``timedelta``, or None) in milliseconds."""
    if timeout is None:
        return None
    seconds = _seconds(timeout)
    if seconds is None or seconds <= 0:
        raise ConfigurationError(
            f"{owner}: timeout must be a number of seconds > 0 (or a timedelta), or None for "
            f"no limit, got {timeout!r}"
        )
    return max(1, int(seconds * 1000))


class Debouncer(Generic[P, R]):
    """Debounces one workflow: create it with ``app.debouncer(workflow, timeout=None)``.

    ``debounce(key, delay, *args, **kwargs)`` starts the workflow ``delay`` seconds after the
    last call for ``key``, with the arguments of that last call; ``timeout`` (seconds) caps
    the total wait, counted from the first call of the cycle. Keys are per workflow: the same
    key on two workflows debounces independently.
    """

    def __init__(
        self,
        name: str,
        *,
        broker: Callable[[], Broker],
        clock: Clock,
        queue: str,
        encode_inputs: EncodeInputs,
        handle: Callable[[str], WorkflowHandle[R]],
        timeout: float | timedelta | None = None,
        priority: int | None = None,
        workflow_timeout: float | None = None,
        check: Callable[[], None] | None = None,
        run_eagerly: RunEagerly | None = None,
    ) -> None:
        """Built by ``app.debouncer()`` (or a ``Client``): ``broker`` returns the system
        database (called on each debounce, so building a debouncer connects to nothing);
        ``queue`` is where the workflow waits; ``encode_inputs`` serializes a call's
        arguments; ``handle`` makes the handle returned for an id; ``priority`` and
        ``workflow_timeout`` (the workflow's durable timeout, seconds) go on each workflow
        a cycle creates; ``check`` runs before each debounce (refusing, say, an unknown
        queue); ``run_eagerly`` see :data:`RunEagerly`."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"debouncer: workflow name must be a non-empty string, got {name!r}"
            )
        self._owner = f"debouncer of workflow {name!r}"
        self._name = name
        self._max_wait_ms = check_timeout(self._owner, timeout)
        self._timeout = timeout
        self._broker = broker
        self._clock = clock
        self._queue = queue
        self._encode_inputs = encode_inputs
        self._handle = handle
        self._priority = priority
        self._timeout_ms = int(workflow_timeout * 1000) if workflow_timeout else None
        self._check = check
        self._run_eagerly = run_eagerly

    def __repr__(self) -> str:
        return f"<Debouncer of {self._name!r} timeout={self._timeout!r}>"

    @property
    def name(self) -> str:
        """The debounced workflow's registered name."""
        return self._name

    @property
    def queue(self) -> str:
        """The queue the debounced workflows wait in."""
        return self._queue

    @property
    def timeout(self) -> float | timedelta | None:
        """The longest wait from the first call of a cycle to the start (None: no limit)."""
        return self._timeout

    def debounce(
        self, key: str, delay: float | timedelta, /, *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandle[R]:
        """Start the workflow with these arguments ``delay`` seconds from now, unless another
        call for ``key`` comes first; return its handle.

        While the workflow of this key's current cycle has not started (it is DELAYED), this
        call replaces its arguments and moves its start to ``now + delay``, but never past
        ``timeout`` after the cycle's first call, and returns the same handle. Once it has
        started (or finished, or is gone), this call begins a new cycle. A start that is
        already due makes the workflow ENQUEUED at once. Concurrent calls from any number of
        processes never leave two waiting workflows for one key.

        ``key`` and ``delay`` are positional-only, so the workflow may take arguments of those
        names. Raises :class:`ConfigurationError` for a bad key or delay and
        :class:`SerializationError` for an argument that cannot be stored (before anything is
        written). Inside a workflow the call is a step of it: a replay returns the recorded
        handle without writing again. Inside a step it raises :class:`TaskflowError`.
        """
        check_key(self._owner, key)
        delay_ms = check_delay(self._owner, delay)
        forbid_in_step(f"debouncing workflow {self._name!r}")
        if self._run_eagerly is not None:
            ran = self._run_eagerly(args, kwargs)
            if ran is not None:
                return ran
        inputs = self._encode_inputs(args, kwargs)
        if self._check is not None:
            self._check()
        parent = current_context()
        step_name = f"{self._name}.debounce"
        step_id: int | None = None
        if parent is not None:
            step_id, recorded = parent.take_step_id(step_name)
            if recorded is not None:
                return self._handle(
                    recorded.child_workflow_id or decode(recorded.output or '""', str)
                )
            # Derived from the caller, so a caller that crashed after this write and runs
            # again finds the same workflow instead of starting a second one.
            workflow_id = f"{parent.workflow_id}-{step_id}"
        else:
            workflow_id = str(uuid.uuid4())
        now = now_ms(self._clock)
        user = parent.user if parent is not None else None
        result = self.debounce_encoded(key, delay_ms, inputs, workflow_id, now, user)
        done = result.workflow_id
        if parent is not None and step_id is not None:
            held = parent.checkpoint(
                StepRow(
                    step_id=step_id,
                    name=step_name,
                    output=encode(done),
                    child_workflow_id=done,
                    started_at=now,
                    finished_at=now_ms(self._clock),
                )
            )
            done = held.child_workflow_id or done
        return self._handle(done)

    def debounce_encoded(
        self,
        key: str,
        delay_ms: int,
        inputs: str,
        workflow_id: str,
        now: int,
        user: str | None = None,
    ) -> DebounceResult:
        """The broker call behind :meth:`debounce`, for arguments already checked and encoded
        (JSON text as ``Signature.encode_inputs`` makes it): ``workflow_id`` is the id a new
        cycle would take. Records no step."""
        new = NewWorkflow(
            id=workflow_id,
            name=self._name,
            status=Status.DELAYED,
            inputs=inputs,
            queue=self._queue,
            user=user,
            priority=self._priority,
            created_at=now,
            timeout_ms=self._timeout_ms,
        )
        return self._broker().debounce(new, key, delay_ms, self._max_wait_ms, now)


__all__ = [
    "Debouncer",
    "EncodeInputs",
    "RunEagerly",
    "check_delay",
    "check_key",
    "check_timeout",
]
