"""Plain data carried between layers: rows as the broker stores them, and the public
``WorkflowInfo`` / ``StepInfo`` views built from them.

Timestamps in rows are integer milliseconds since the epoch (both dialects store them so);
the public views turn them into timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from taskflow.status import Status


class ErrorInfo(msgspec.Struct, frozen=True):
    """A recorded exception: its type (``module.QualName``), message and traceback text."""

    type_name: str
    message: str
    traceback: str = ""
    args: list[object] | None = None


class NewWorkflow(msgspec.Struct, kw_only=True):
    """A workflow row about to be written."""

    id: str
    name: str
    status: Status
    inputs: str
    queue: str | None = None
    executor_id: str | None = None
    app_version: str | None = None
    user: str | None = None
    parent_id: str | None = None
    priority: int | None = None
    partition_key: str | None = None
    dedup_id: str | None = None
    created_at: int
    started_at: int | None = None
    timeout_ms: int | None = None
    delay_until: int | None = None
    """Not claimable before this (ms); the row is DELAYED until then."""
    expires_at: int | None = None
    """Never started if not claimed by then (ms): it becomes CANCELLED."""

    @property
    def deadline_at(self) -> int | None:
        """When the durable timeout cancels it (ms), counted from its start."""
        if self.timeout_ms is None or self.started_at is None:
            return None
        return self.started_at + self.timeout_ms


class WorkflowRow(msgspec.Struct, kw_only=True):
    """A workflow as stored."""

    id: str
    name: str
    status: Status
    inputs: str
    output: str | None = None
    error: str | None = None
    queue: str | None = None
    executor_id: str | None = None
    app_version: str | None = None
    user: str | None = None
    parent_id: str | None = None
    priority: int | None = None
    attempts: int = 0
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None
    timeout_ms: int | None = None
    deadline_at: int | None = None
    partition_key: str | None = None
    dedup_id: str | None = None
    delay_until: int | None = None
    expires_at: int | None = None
    retries: int = 0
    """Workflow-level retries so far (Celery's ``request.retries``)."""
    fresh: bool = False
    """Set by a claim that started it for the first time: no step can be recorded yet. Not
    stored; False whenever unknown."""


class StepRow(msgspec.Struct, kw_only=True):
    """A step outcome as stored. Exactly one of ``output`` / ``error`` is set once recorded."""

    step_id: int
    name: str
    output: str | None = None
    error: str | None = None
    child_workflow_id: str | None = None
    started_at: int | None = None
    finished_at: int | None = None


class StartResult(msgspec.Struct, frozen=True):
    """What starting a workflow did: ``created`` is False when the id already existed, and
    ``row`` is then the existing workflow."""

    created: bool
    row: WorkflowRow | None = None


class EnqueueResult(msgspec.Struct, frozen=True):
    """What enqueueing one workflow did.

    ``created``: a new row was written. Otherwise ``conflict`` says why not: ``"id"`` (a
    workflow with this id exists; ``existing_id`` is that id) or ``"dedup"`` (another
    ENQUEUED/DELAYED/PENDING workflow of the same queue holds the dedup id; ``existing_id``
    is its id).
    """

    id: str
    created: bool
    conflict: str | None = None
    existing_id: str | None = None


class Finish(msgspec.Struct, frozen=True):
    """A final outcome a worker writes for a workflow it claimed (SUCCESS or ERROR)."""

    id: str
    status: Status
    output: str | None = None
    error: str | None = None


class ExecutorBeat(msgspec.Struct, frozen=True, kw_only=True):
    """A heartbeat: a live worker, or a process running workflows directly."""

    executor_id: str
    kind: str
    """``"worker"`` or ``"process"``."""
    name: str
    hostname: str
    pid: int
    app_version: str | None
    queues: list[str] = []
    concurrency: int = 0
    started_at: int
    heartbeat_at: int
    pool: str | None = None
    """A worker's pool (``prefork``, ``threads``, ``solo``); None for a process."""
    workflows: list[str] | None = None
    """The workflow names a worker's app registers (None: not recorded, e.g. a process)."""


class OrphanRef(msgspec.Struct, frozen=True):
    """A PENDING workflow whose executor has no fresh heartbeat."""

    id: str
    name: str
    executor_id: str
    queue: str | None
    parent_id: str | None
    parent_status: Status | None
    """Status of its parent workflow (None when it has none or the parent row is gone)."""


class RunningRef(msgspec.Struct, frozen=True, kw_only=True):
    """A running (PENDING) workflow and the executor that owns it, without its payloads."""

    id: str
    name: str
    executor_id: str | None
    queue: str | None
    started_at: int | None
    attempts: int


class DelayedRef(msgspec.Struct, frozen=True, kw_only=True):
    """A DELAYED workflow: when it wakes (``delay_until``; None: only when what it waits
    for arrives) and what it waits for (``wait_kind`` None: a countdown, eta, debounce or
    retry delay)."""

    id: str
    name: str
    queue: str | None
    delay_until: int | None
    wait_kind: str | None
    wait_on: str | None
    wait_key: str | None
    retries: int
    created_at: int


class QueueTick(msgspec.Struct, frozen=True):
    """What a periodic queue maintenance pass did."""

    promoted: int
    """DELAYED workflows that became due and are now ENQUEUED."""
    expired: int
    """ENQUEUED/DELAYED workflows past ``expires_at``, now CANCELLED."""
    next_due: int | None
    """Earliest ``delay_until`` still DELAYED (ms), or None."""
    timed_out: int = 0
    """Workflows cancelled because a durable timeout passed: the PENDING ones past their
    ``deadline_at`` and their descendants that were still ENQUEUED, DELAYED or PENDING."""


class ControlRef(msgspec.Struct, frozen=True):
    """A workflow an operator action (resume, set_delay) found: its name, the status it was
    in before the action, and whether the action changed it."""

    id: str
    name: str
    status: Status
    changed: bool


class Wait(msgspec.Struct, frozen=True):
    """What a parked workflow waits for: ``kind`` is 'sleep', 'recv', 'event' or 'child';
    ``until`` the time it wakes anyway (ms, None: no limit); ``wait_on`` the workflow whose
    event or result it waits for (its own id for recv); ``wait_key`` the topic or event
    key."""

    kind: str
    until: int | None
    wait_on: str | None = None
    wait_key: str | None = None


class Delivery(msgspec.Struct, frozen=True):
    """What sending a message found: whether the destination exists, whether this call
    wrote the message (False for a replayed send), and the sending workflow's status."""

    found: bool
    inserted: bool
    sender_status: Status | None = None


class QueueDepth(msgspec.Struct, frozen=True):
    """How much work one queue (or one partition of it) holds right now."""

    queue: str
    partition_key: str | None
    """None for the queue's unkeyed work (all of it on a queue that is not partitioned)."""
    enqueued: int
    delayed: int
    running: int
    """PENDING workflows: running, or waiting for recovery."""


class LimitedClaim(msgspec.Struct, frozen=True):
    """What a claim from one limited queue got."""

    rows: list[WorkflowRow]
    """The claimed workflows, in claim order."""
    retry_at: int | None = None
    """When to claim from this queue again even without news (ms): room opens in the rate
    window then, or partitions were left unvisited (then it is now). None: wait for news."""


class ScheduleRow(msgspec.Struct, kw_only=True):
    """A stored schedule. Timestamps are ms; ``context``, ``inputs`` and ``options`` are JSON
    text."""

    name: str
    workflow_name: str
    expression: str
    """A cron string or ``"@every N"`` (validated above the broker)."""
    tz: str
    context: str
    """JSON handed to the workflow with each scheduled time."""
    inputs: str | None = None
    """JSON ``{"args": [...], "kwargs": {...}}`` of a Celery ``beat_schedule`` entry; None:
    the workflow is called with ``(scheduled_at, context)``."""
    backfill: bool = False
    queue: str | None = None
    priority: int | None = None
    options: str = "{}"
    """JSON of the other enqueue options (timeout, expires...)."""
    source: str = "api"
    """``'code'`` (declared in an app) or ``'api'`` (created at run time)."""
    paused: bool = False
    next_fire_at: int
    """The next scheduled time not fired yet."""
    last_fired_at: int | None = None
    """The scheduled time of the latest fire."""
    created_at: int
    updated_at: int


class BeatLease(msgspec.Struct, frozen=True):
    """Who leads the beat: holder, fencing term, lease end (ms)."""

    holder: str | None
    term: int
    lease_until: int


class WorkflowInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A workflow's status record, as ``handle.info()`` returns it."""

    id: str
    name: str
    status: Status
    queue: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    executor: str | None
    app_version: str | None
    user: str | None
    error: ErrorInfo | None
    parent_id: str | None
    inputs: dict[str, Any] | None = None
    """``{"args": [...], "kwargs": {...}}`` as JSON types; only when listed with
    ``load_inputs=True`` (None otherwise)."""
    output: Any = None
    """The result as JSON types; only when listed with ``load_outputs=True`` (None
    otherwise, and for a workflow without a result)."""


class VersionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An app version workers have run: when it was first seen and when it last became the
    latest (the newest ``latest_at`` is the latest version)."""

    version: str
    created_at: datetime
    latest_at: datetime


class StepInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded step of a workflow, as ``handle.steps()`` returns it."""

    step_id: int
    name: str
    status: Status
    error: ErrorInfo | None
    child_workflow_id: str | None
    started_at: datetime | None
    finished_at: datetime | None


def ms_to_datetime(ms: int | None) -> datetime | None:
    """Milliseconds since the epoch to an aware UTC datetime (None stays None)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def decode_error_info(raw: str | None) -> ErrorInfo | None:
    """Parse a stored error column."""
    if raw is None:
        return None
    return msgspec.json.decode(raw, type=ErrorInfo)


def workflow_info(row: WorkflowRow) -> WorkflowInfo:
    """The public view of a stored workflow."""
    created = ms_to_datetime(row.created_at)
    assert created is not None
    return WorkflowInfo(
        id=row.id,
        name=row.name,
        status=row.status,
        queue=row.queue,
        created_at=created,
        started_at=ms_to_datetime(row.started_at),
        finished_at=ms_to_datetime(row.finished_at),
        attempts=row.attempts,
        executor=row.executor_id,
        app_version=row.app_version,
        user=row.user,
        error=decode_error_info(row.error),
        parent_id=row.parent_id,
    )


def step_info(row: StepRow) -> StepInfo:
    """The public view of a stored step."""
    status = Status.ERROR if row.error is not None else Status.SUCCESS
    return StepInfo(
        step_id=row.step_id,
        name=row.name,
        status=status,
        error=decode_error_info(row.error),
        child_workflow_id=row.child_workflow_id,
        started_at=ms_to_datetime(row.started_at),
        finished_at=ms_to_datetime(row.finished_at),
    )


__all__ = [
    "BeatLease",
    "ControlRef",
    "DelayedRef",
    "Delivery",
    "EnqueueResult",
    "ErrorInfo",
    "ExecutorBeat",
    "Finish",
    "LimitedClaim",
    "NewWorkflow",
    "OrphanRef",
    "QueueDepth",
    "QueueTick",
    "RunningRef",
    "ScheduleRow",
    "StartResult",
    "StepInfo",
    "StepRow",
    "VersionInfo",
    "Wait",
    "WorkflowInfo",
    "WorkflowRow",
    "decode_error_info",
    "ms_to_datetime",
    "step_info",
    "workflow_info",
]
