"""Messages and events: ``send``/``recv`` between workflows and the outside world, and the
latest-value events a workflow publishes with ``set_event`` for others to ``get_event``.

Inside a workflow each of these is a recorded step, so a replay sends nothing twice, receives
the same message again and reads the same event value. A message is consumed and recorded
as the receiving step in one transaction: it is delivered exactly once, in send order per
topic, whatever crashes. The same functions called from outside a workflow (``app.send``,
``app.get_event``) are plain reads and writes.
"""

from __future__ import annotations

from typing import Any

from taskflow.broker.base import Broker
from taskflow.broker.wakeups import events_key, inbox_key
from taskflow.clock import Clock, now_ms
from taskflow.errors import ConfigurationError, UnknownWorkflowError
from taskflow.handle import failure, set_workflow_waiter
from taskflow.models import StepRow, Wait, WorkflowRow
from taskflow.serialization import decode, decode_error, encode, encode_error
from taskflow.status import Status
from taskflow.waiting import (
    check_duration,
    check_key,
    pause,
    record_deadline,
    stop_if_cancelled,
    wait_until,
    workflow_context,
)
from taskflow.workflow import WorkflowContext, current_context

SEND_STEP = "taskflow.send"
RECV_STEP = "taskflow.recv"
RECV_DEADLINE_STEP = "taskflow.recv.deadline"
SET_EVENT_STEP = "taskflow.set_event"
GET_EVENT_STEP = "taskflow.get_event"
GET_EVENT_DEADLINE_STEP = "taskflow.get_event.deadline"
RESULT_STEP = "taskflow.get_result"
RESULT_DEADLINE_STEP = "taskflow.get_result.deadline"

DEFAULT_TIMEOUT = 60.0
"""Seconds ``recv`` and ``get_event`` wait by default."""


def topic_of(topic: str | None) -> str:
    """The stored topic: '' for "no topic". An empty string is refused, so the two never
    mix."""
    if topic is None:
        return ""
    if not isinstance(topic, str) or not topic:
        raise ConfigurationError(f"topic must be a non-empty string or None, got {topic!r}")
    return topic


def _check_id(workflow_id: object, what: str) -> str:
    if not isinstance(workflow_id, str) or not workflow_id:
        raise ConfigurationError(f"{what}: workflow_id must be a non-empty string")
    return workflow_id


# -- sending ---------------------------------------------------------------------------------
def send(workflow_id: str, message: Any, topic: str | None = None) -> None:
    """Send ``message`` (any value msgspec JSON encodes) to workflow ``workflow_id``.

    Inside a workflow the send is a step: a replay does not send again. Outside a workflow
    use ``app.send``. Raises :class:`UnknownWorkflowError` when no workflow has that id, and
    :class:`TaskflowError` inside a step.
    """
    ctx = workflow_context("taskflow.send()")
    dest = _check_id(workflow_id, "taskflow.send()")
    stored_topic = topic_of(topic)
    step_id, recorded = ctx.take_step_id(SEND_STEP)
    if recorded is not None:
        return
    payload = encode(message, f"message to workflow {dest!r}")
    ctx.check_deadline()
    delivery = ctx.broker.send_message(
        dest,
        stored_topic,
        payload,
        now_ms(ctx.clock),
        send_key=f"{ctx.workflow_id}:{step_id}",
        sender=(ctx.workflow_id, step_id, SEND_STEP),
    )
    if not delivery.found:
        raise UnknownWorkflowError(
            f"cannot send to workflow {dest!r} from workflow {ctx.workflow_id!r}: "
            "no workflow has that id"
        )
    stop_if_cancelled(ctx, delivery.sender_status)


def send_outside(
    broker: Broker,
    clock: Clock,
    workflow_id: str,
    message: Any,
    topic: str | None = None,
    idempotency_key: str | None = None,
) -> None:
    """Send from outside any workflow (``app.send``, ``Client.send``). With
    ``idempotency_key`` a repeated call sends nothing more."""
    dest = _check_id(workflow_id, "send()")
    stored_topic = topic_of(topic)
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not idempotency_key
    ):
        raise ConfigurationError(
            f"send(): idempotency_key must be a non-empty string, got {idempotency_key!r}"
        )
    payload = encode(message, f"message to workflow {dest!r}")
    delivery = broker.send_message(
        dest,
        stored_topic,
        payload,
        now_ms(clock),
        send_key=f"key:{idempotency_key}" if idempotency_key is not None else None,
    )
    if not delivery.found:
        raise UnknownWorkflowError(f"cannot send to workflow {dest!r}: no workflow has that id")


# -- receiving -------------------------------------------------------------------------------
def recv(topic: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """The next message sent to this workflow on ``topic`` (None: messages sent without a
    topic), waiting up to ``timeout`` seconds; None if none came by then.

    Durable: the deadline is recorded when the wait starts, a message is consumed and
    recorded in one transaction (delivered exactly once, in send order per topic), and a
    replay returns the same message. Run by a worker, a wait longer than
    ``workflow_park_after`` gives back the worker slot until a message arrives.
    """
    ctx = workflow_context("taskflow.recv()")
    stored_topic = topic_of(topic)
    check_duration("taskflow.recv()", "timeout", timeout)
    deadline_id, deadline_rec = ctx.take_step_id(RECV_DEADLINE_STEP)
    recv_id, recorded = ctx.take_step_id(RECV_STEP)
    if recorded is not None:
        return decode(recorded.output) if recorded.output is not None else None
    started = now_ms(ctx.clock)

    def take() -> str | None:
        message, status = ctx.broker.take_message(
            ctx.workflow_id, stored_topic, recv_id, RECV_STEP, started, now_ms(ctx.clock)
        )
        stop_if_cancelled(ctx, status)
        return message

    message = take()
    if message is None:
        deadline = _deadline_at(ctx, deadline_id, deadline_rec, RECV_DEADLINE_STEP, timeout)
        with ctx.broker.wakeups.subscribe(inbox_key(ctx.workflow_id)) as sub:
            message = wait_until(
                ctx,
                deadline,
                take,
                sub,
                Wait(kind="recv", until=deadline, wait_on=ctx.workflow_id, wait_key=stored_topic),
            )
    if message is None:
        row = ctx.checkpoint(
            StepRow(
                step_id=recv_id,
                name=RECV_STEP,
                output="null",
                started_at=started,
                finished_at=now_ms(ctx.clock),
            )
        )
        return decode(row.output) if row.output is not None else None
    return decode(message)


def _deadline_at(
    ctx: WorkflowContext,
    step_id: int,
    recorded: StepRow | None,
    name: str,
    seconds: float | None,
) -> int | None:
    """The recorded deadline of a wait whose step id was reserved earlier (``step_id``)."""
    if recorded is not None:
        return decode(recorded.output, int | None) if recorded.output is not None else None
    after = ctx.next_step
    ctx.next_step = step_id
    try:
        return record_deadline(ctx, name, seconds)
    finally:
        ctx.next_step = after


# -- events ----------------------------------------------------------------------------------
def set_event(key: str, value: Any) -> None:
    """Publish ``value`` as the latest value of this workflow's event ``key``; readers see
    it at once (``get_event``). A step of the workflow: a replay does not publish again.
    Raises :class:`TaskflowError` outside a workflow or inside a step."""
    ctx = workflow_context("taskflow.set_event()")
    stored_key = check_key(key, "taskflow.set_event()")
    step_id, recorded = ctx.take_step_id(SET_EVENT_STEP)
    if recorded is not None:
        return
    payload = encode(value, f"event {stored_key!r} of workflow {ctx.workflow_id!r}")
    ctx.check_deadline()
    status = ctx.broker.set_event(
        ctx.workflow_id, stored_key, payload, now_ms(ctx.clock), step=(step_id, SET_EVENT_STEP)
    )
    stop_if_cancelled(ctx, status)


def get_event(workflow_id: str, key: str, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
    """The latest value of workflow ``workflow_id``'s event ``key``, waiting up to
    ``timeout`` seconds (None: until it is set) for the first one; None if it is not set by
    then, or if that workflow finished without setting it.

    Inside a workflow the read is a step: a replay returns the same value. Outside a
    workflow use ``app.get_event``.
    """
    ctx = workflow_context("taskflow.get_event()")
    target = _check_id(workflow_id, "taskflow.get_event()")
    stored_key = check_key(key, "taskflow.get_event()")
    check_duration("taskflow.get_event()", "timeout", timeout, allow_none=True)
    deadline_id, deadline_rec = ctx.take_step_id(GET_EVENT_DEADLINE_STEP)
    read_id, recorded = ctx.take_step_id(GET_EVENT_STEP)
    if recorded is not None:
        return decode(recorded.output) if recorded.output is not None else None
    started = now_ms(ctx.clock)
    value = _event_or_end(ctx.broker, target, stored_key)
    if value is None:
        deadline = _deadline_at(ctx, deadline_id, deadline_rec, GET_EVENT_DEADLINE_STEP, timeout)
        with ctx.broker.wakeups.subscribe(events_key(target)) as sub:
            value = wait_until(
                ctx,
                deadline,
                lambda: _event_or_end(ctx.broker, target, stored_key),
                sub,
                Wait(kind="event", until=deadline, wait_on=target, wait_key=stored_key),
            )
    row = ctx.checkpoint(
        StepRow(
            step_id=read_id,
            name=GET_EVENT_STEP,
            output=value if value is not None else "null",
            started_at=started,
            finished_at=now_ms(ctx.clock),
        )
    )
    return decode(row.output) if row.output is not None else None


_ENDED = "null"
"""What a wait for an event returns when the workflow finished without setting it (read as
None, as an unset event is)."""


def _event_or_end(broker: Broker, workflow_id: str, key: str) -> str | None:
    """The stored value, ``_ENDED`` when the workflow finished without one, else None."""
    value, status = broker.get_event(workflow_id, key)
    if value is not None:
        return value
    if status is not None and status.is_finished:
        return _ENDED
    return None


def get_event_outside(
    broker: Broker,
    clock: Clock,
    workflow_id: str,
    key: str,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Any:
    """``get_event`` from outside any workflow (``app.get_event``, ``Client.get_event``)."""
    target = _check_id(workflow_id, "get_event()")
    stored_key = check_key(key, "get_event()")
    check_duration("get_event()", "timeout", timeout, allow_none=True)
    start = clock.monotonic()
    with broker.wakeups.subscribe(events_key(target)) as sub:
        while True:
            value = _event_or_end(broker, target, stored_key)
            if value is not None:
                return decode(value)
            left = None if timeout is None else timeout - (clock.monotonic() - start)
            if left is not None and left <= 0:
                return None
            pause(clock, sub, left if left is not None else 3600.0)


# -- a child's result ------------------------------------------------------------------------
def wait_for_result(broker: Broker, workflow_id: str, timeout: float | None) -> WorkflowRow | None:
    """``handle.get()``/``wait()`` inside a workflow: a durable, recorded wait for another
    workflow's outcome (parking when long). Returns None outside workflow code, where the
    handle waits as usual."""
    ctx = current_context()
    if ctx is None or ctx.in_step:
        return None
    check_duration("get()", "timeout", timeout, allow_none=True)
    deadline_id, deadline_rec = ctx.take_step_id(RESULT_DEADLINE_STEP)
    result_id, recorded = ctx.take_step_id(RESULT_STEP)
    if recorded is None:
        started = now_ms(ctx.clock)

        def finished() -> WorkflowRow | None:
            row = broker.get_workflow(workflow_id)
            if row is None:
                raise UnknownWorkflowError(f"no workflow with id {workflow_id!r}")
            return row if row.status.is_finished else None

        row = finished()
        if row is None:
            deadline = _deadline_at(ctx, deadline_id, deadline_rec, RESULT_DEADLINE_STEP, timeout)
            row = wait_until(
                ctx,
                deadline,
                finished,
                None,
                Wait(kind="child", until=deadline, wait_on=workflow_id),
            )
        if row is None:
            error = encode_error(
                TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout}s")
            )
            output = None
        elif row.status is Status.SUCCESS:
            output, error = row.output if row.output is not None else "null", None
        else:
            output, error = None, encode_error(failure(workflow_id, row.status, row.error))
        recorded = ctx.checkpoint(
            StepRow(
                step_id=result_id,
                name=RESULT_STEP,
                output=output,
                error=error,
                child_workflow_id=workflow_id,
                started_at=started,
                finished_at=now_ms(ctx.clock),
            )
        )
    if recorded.error is not None:
        raise decode_error(recorded.error)
    return WorkflowRow(
        id=workflow_id,
        name="",
        status=Status.SUCCESS,
        inputs="[]",
        output=recorded.output,
        created_at=0,
    )


set_workflow_waiter(wait_for_result)

__all__ = [
    "DEFAULT_TIMEOUT",
    "get_event",
    "get_event_outside",
    "recv",
    "send",
    "send_outside",
    "set_event",
    "topic_of",
    "wait_for_result",
]
