"""Streams: append-only sequences of values a workflow writes under a key
(``taskflow.write_stream``) and anyone reads while it runs (``read_stream``).

Inside workflow code each write is a recorded step whose append commits together with the
step record, so a replay after a crash never appends a value twice. A stream ends with its
close row (``taskflow.close_stream``) or, for readers, when its workflow finishes. Readers
start from the first value every time and wait for new ones on the wake-up hub, never in a
tight loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from taskflow.broker.base import Broker, StreamWrite
from taskflow.broker.wakeups import streams_key
from taskflow.clock import Clock, now_ms
from taskflow.errors import ConfigurationError, TaskflowError, UnknownWorkflowError
from taskflow.serialization import decode, encode
from taskflow.waiting import check_duration, check_key, stop_if_cancelled
from taskflow.workflow import WorkflowContext, current_context

WRITE_STEP = "taskflow.write_stream"
CLOSE_STEP = "taskflow.close_stream"

BATCH = 100
"""Rows a reader fetches per query."""


def _writer(what: str) -> WorkflowContext:
    """The running workflow; unlike most durable calls, a step may write too."""
    ctx = current_context()
    if ctx is None:
        raise TaskflowError(
            f"{what} was called outside a workflow: a stream belongs to a running workflow, "
            "call it from workflow code (or a step)"
        )
    return ctx


_CLOSE = object()
"""The value that stands for "append the close row"."""


def _append(ctx: WorkflowContext, key: str, value: Any, name: str) -> StreamWrite:
    """Append in workflow code (a recorded step, or its record on replay: no append) or in
    a step (a plain append: a retried step may append again)."""
    if ctx.in_step:
        return ctx.broker.write_stream(
            ctx.workflow_id, key, _payload(ctx, key, value), now_ms(ctx.clock)
        )
    step_id, recorded = ctx.take_step_id(name)
    if recorded is not None:
        return StreamWrite(offset=None, closed=False, recorded=False, status=None)
    payload = _payload(ctx, key, value)
    ctx.check_deadline()
    write = ctx.broker.write_stream(
        ctx.workflow_id, key, payload, now_ms(ctx.clock), step=(step_id, name)
    )
    stop_if_cancelled(ctx, write.status)
    return write


def _payload(ctx: WorkflowContext, key: str, value: Any) -> str | None:
    if value is _CLOSE:
        return None
    return encode(value, f"value of stream {key!r} of workflow {ctx.workflow_id!r}")


def write_stream(key: str, value: Any) -> None:
    """Append ``value`` (any value msgspec JSON encodes; None is a value, not the end) to
    this workflow's stream ``key``, for ``read_stream`` readers, who see it at once.

    In workflow code the write is a step: its append and its record commit together, so a
    replay does not append again. In a step it is a plain append, not recorded: a step that
    is retried, or runs again after a crash, appends again. Raises :class:`TaskflowError`
    outside a workflow and when the stream is closed.
    """
    ctx = _writer("taskflow.write_stream()")
    stored_key = check_key(key, "taskflow.write_stream()")
    write = _append(ctx, stored_key, value, WRITE_STEP)
    if write.closed:
        raise TaskflowError(
            f"cannot write to stream {stored_key!r} of workflow {ctx.workflow_id!r}: it is "
            "closed (taskflow.close_stream was called for it)"
        )


def close_stream(key: str) -> None:
    """Close this workflow's stream ``key``: readers stop once they have read every value
    written before it, and further writes raise :class:`TaskflowError`. Closing a closed
    stream (or one never written) is fine: an empty stream is closed then.

    In workflow code the close is a recorded step; in a step it is a plain write. Raises
    :class:`TaskflowError` outside a workflow.
    """
    ctx = _writer("taskflow.close_stream()")
    stored_key = check_key(key, "taskflow.close_stream()")
    _append(ctx, stored_key, _CLOSE, CLOSE_STEP)


def read_stream(
    broker: Broker,
    clock: Clock,
    workflow_id: str,
    key: str,
    timeout: float | None = None,
) -> Iterator[Any]:
    """The values of workflow ``workflow_id``'s stream ``key`` (``app.read_stream``,
    ``Client.read_stream``): an iterator yielding them as JSON types from the first one, in
    write order, waiting for new ones as they are written.

    It ends after the close row, or once the workflow has finished (SUCCESS, ERROR,
    CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED) and every value it wrote has been yielded.
    ``timeout`` (seconds, measured on ``clock``; None: no limit) bounds each wait for the
    next value: the iterator raises the built-in :class:`TimeoutError` when none comes by
    then. Raises :class:`UnknownWorkflowError` at once when no workflow has that id.
    Reading is never recorded as a step, even in workflow code.
    """
    if not isinstance(workflow_id, str) or not workflow_id:
        raise ConfigurationError("read_stream(): workflow_id must be a non-empty string")
    stored_key = check_key(key, "read_stream()")
    check_duration("read_stream()", "timeout", timeout, allow_none=True)
    # Checked before the iterator starts, so a wrong id fails where it was given.
    if broker.get_status(workflow_id) is None:
        raise UnknownWorkflowError(
            f"cannot read stream {stored_key!r} of workflow {workflow_id!r}: no workflow "
            "has that id"
        )
    return _values(broker, clock, workflow_id, stored_key, timeout)


def _values(
    broker: Broker, clock: Clock, workflow_id: str, key: str, timeout: float | None
) -> Iterator[Any]:
    after = -1
    # Subscribed before the first read: a write landing between a read and the wait that
    # follows it still ends that wait.
    with broker.wakeups.subscribe(streams_key(workflow_id)) as sub:
        waited_since = clock.monotonic()
        while True:
            batch = broker.read_stream(workflow_id, key, after, BATCH)
            if batch.status is None:
                raise UnknownWorkflowError(
                    f"workflow {workflow_id!r} was deleted while its stream {key!r} was read"
                )
            for offset, value in batch.rows:
                if value is None:
                    return
                after = offset
                yield decode(value)
            if batch.rows:
                waited_since = clock.monotonic()
            if len(batch.rows) == BATCH:
                continue
            if batch.status.is_finished:
                # Read in the same snapshot as the rows: nothing was written after them.
                return
            left = None if timeout is None else timeout - (clock.monotonic() - waited_since)
            if left is not None and left <= 0:
                raise TimeoutError(
                    f"no new value in stream {key!r} of workflow {workflow_id!r} within {timeout}s"
                )
            # Real time even under an injected clock: what ends this wait is another
            # thread's or process's write, and the hub never blocks past its poll interval.
            sub.wait(left if left is not None else 3600.0)


__all__ = ["BATCH", "CLOSE_STEP", "WRITE_STEP", "close_stream", "read_stream", "write_stream"]
