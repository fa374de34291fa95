"""Operator actions on workflows by id: cancel, resume and set_delay.

They need a broker and a clock, never the workflows' code, so the app, its handles and a
producer that does not import the code (the planned ``Client``) share them. Each checks its
input, makes one broker call, and turns what the broker found into an answer or an error
that names each workflow and its status.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

from taskflow.broker.base import Broker
from taskflow.clock import Clock, now_ms
from taskflow.errors import ConfigurationError, UnknownWorkflowError, WorkflowStatusError
from taskflow.models import ControlRef
from taskflow.queues import validate_queue_name
from taskflow.status import RESUMABLE, Status


def workflow_ids(ids: Iterable[object], action: str) -> list[str]:
    """``ids`` in order without duplicates, or :class:`ConfigurationError` naming a value
    that is not a non-empty string (a list passed whole, instead of unpacked, among them)."""
    checked: list[str] = []
    for i in ids:
        if not isinstance(i, str) or not i:
            hint = f" (unpack a list: {action}(*ids))" if isinstance(i, list | tuple | set) else ""
            raise ConfigurationError(
                f"{action}: workflow ids must be non-empty strings, got {i!r}{hint}"
            )
        checked.append(i)
    return list(dict.fromkeys(checked))


def cancel(broker: Broker, clock: Clock, ids: Iterable[object]) -> list[str]:
    """Cancel the workflows still ENQUEUED, DELAYED or PENDING among ``ids``, and all their
    unfinished descendants, in one statement. Returns every id cancelled: the given ones
    first, in the order given, then the descendants, sorted. Unknown and finished workflows
    are skipped, so the answer says which of ``ids`` were cancelled by this call."""
    wanted = workflow_ids(ids, "cancel")
    if not wanted:
        return []
    done = set(broker.cancel(wanted, now_ms(clock)))
    given = [i for i in wanted if i in done]
    return given + sorted(done.difference(given))


def resume(
    broker: Broker, clock: Clock, ids: Iterable[object], queue: str | None = None
) -> list[ControlRef]:
    """Send CANCELLED, ERROR and MAX_RECOVERY_ATTEMPTS_EXCEEDED workflows back to a queue
    (``queue``, else their own, else ``default``) to run again from their last completed
    step; all of ``ids`` or none. Returns what the broker found, in the order of ``ids``.

    Raises :class:`UnknownWorkflowError` naming the ids that do not exist and
    :class:`WorkflowStatusError` naming those in another status; nothing is resumed then.
    The caller checks that ``queue`` exists.
    """
    wanted = workflow_ids(ids, "resume")
    if queue is not None:
        validate_queue_name(queue)
    if not wanted:
        return []
    refs = {r.id: r for r in broker.resume(wanted, now_ms(clock), queue)}
    missing = [i for i in wanted if i not in refs]
    if missing:
        raise UnknownWorkflowError(
            f"cannot resume: no workflow with id {', '.join(map(repr, missing))}; nothing was "
            "resumed"
        )
    refused = [refs[i] for i in wanted if refs[i].status not in RESUMABLE]
    if refused:
        which = ", ".join(f"{r.id!r} ({r.status.value})" for r in refused)
        raise WorkflowStatusError(
            f"cannot resume workflow {which}: only CANCELLED, ERROR or "
            "MAX_RECOVERY_ATTEMPTS_EXCEEDED workflows can be resumed; nothing was resumed"
        )
    return [refs[i] for i in wanted]


def delay_until(clock: Clock, seconds: float | None = None, until: datetime | None = None) -> int:
    """The new due time (ms) from exactly one of ``seconds`` from now (>= 0) or ``until`` (a
    datetime; naive means UTC, as Celery reads ``eta``), else :class:`ConfigurationError`."""
    if (seconds is None) == (until is None):
        raise ConfigurationError(
            f"set_delay: give exactly one of seconds or until, got seconds={seconds!r}, "
            f"until={until!r}"
        )
    if seconds is not None:
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise ConfigurationError(
                f"set_delay: seconds must be a finite number >= 0, got {seconds!r}"
            )
        return now_ms(clock) + int(seconds * 1000)
    if not isinstance(until, datetime):
        raise ConfigurationError(f"set_delay: until must be a datetime, got {until!r}")
    when = until if until.tzinfo is not None else until.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def set_delay(
    broker: Broker,
    clock: Clock,
    workflow_id: str,
    seconds: float | None = None,
    until: datetime | None = None,
) -> Status:
    """Move the start of a DELAYED workflow to ``seconds`` from now or to ``until``; at or
    before now it becomes ENQUEUED at once. Returns its new status (DELAYED or ENQUEUED).

    Raises :class:`ConfigurationError` for bad arguments, :class:`UnknownWorkflowError` for
    an unknown id and :class:`WorkflowStatusError` when the workflow is not DELAYED.
    """
    (checked,) = workflow_ids([workflow_id], "set_delay")
    due = delay_until(clock, seconds, until)
    now = now_ms(clock)
    ref = broker.set_delay(checked, due, now)
    if ref is None:
        raise UnknownWorkflowError(f"set_delay: no workflow with id {checked!r}")
    if not ref.changed:
        raise WorkflowStatusError(
            f"set_delay: workflow {checked!r} is {ref.status.value}, not DELAYED: only a "
            "workflow waiting for its delay can be given another one"
        )
    return Status.DELAYED if due > now else Status.ENQUEUED


__all__ = ["cancel", "delay_until", "resume", "set_delay", "workflow_ids"]
