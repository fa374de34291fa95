"""Inspecting and steering workflows from outside them: listing with filters, the steps of
one, forking one from a step, and the app versions workers recorded.

A mixin shared by :class:`~taskflow.client.Client` (a producer or operator that never
imports the workflows' code) and :class:`~taskflow.app.Taskflow`: both have a broker and a
clock, make handles, and know which queues exist. Nothing here needs a workflow's code;
inputs and outputs come back as JSON types.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from taskflow.broker.base import Broker, VersionRow, WorkflowFilter
from taskflow.clock import Clock, now_ms
from taskflow.errors import ConfigurationError, UnknownWorkflowError, WorkflowConflictError
from taskflow.handle import WorkflowHandle
from taskflow.models import (
    StepInfo,
    VersionInfo,
    WorkflowInfo,
    WorkflowRow,
    ms_to_datetime,
    step_info,
    workflow_info,
)
from taskflow.queues import DEFAULT_QUEUE, Queue, validate_queue_name
from taskflow.serialization import decode
from taskflow.status import Status

StatusFilter = Status | str | Iterable[Status | str]
"""One status (a :class:`Status` or its name) or several."""


def _text(what: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string or None, got {value!r}")
    return value


def _statuses(status: object) -> list[Status] | None:
    if status is None:
        return None
    values = [status] if isinstance(status, str | Status) else status
    if not isinstance(values, Iterable):
        raise ConfigurationError(
            f"list_workflows: status must be a status or a list of them, got {status!r}"
        )
    found: list[Status] = []
    for value in values:
        try:
            found.append(Status(value.upper() if isinstance(value, str) else value))
        except (ValueError, TypeError):
            known = ", ".join(s.value for s in Status)
            raise ConfigurationError(
                f"list_workflows: unknown status {value!r}; statuses are {known}"
            ) from None
    if not found:
        raise ConfigurationError("list_workflows: status is an empty list; give None for any")
    return list(dict.fromkeys(found))


def _ms(what: str, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ConfigurationError(f"list_workflows: {what} must be a datetime, got {value!r}")
    # A naive datetime is UTC, as eta and set_delay read it.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _count(what: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(
            f"list_workflows: {what} must be an integer >= {minimum}, got {value!r}"
        )
    return value


def _flag(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"list_workflows: {what} must be True or False, got {value!r}")
    return value


def listed_info(row: WorkflowRow, load_inputs: bool, load_outputs: bool) -> WorkflowInfo:
    """The public view of a listed row, with its inputs and output decoded as JSON types when
    they were loaded."""
    info = workflow_info(row)
    inputs: dict[str, Any] | None = None
    output: Any = None
    if load_inputs and row.inputs:
        inputs = decode(row.inputs, dict[str, Any])
    if load_outputs and row.output is not None:
        output = decode(row.output)
    if inputs is None and output is None:
        return info
    return msgspec.structs.replace(info, inputs=inputs, output=output)


def version_info(row: VersionRow) -> VersionInfo:
    """The public view of a recorded app version."""
    created, latest = ms_to_datetime(row.created_at), ms_to_datetime(row.version_at)
    assert created is not None and latest is not None
    return VersionInfo(version=row.version, created_at=created, latest_at=latest)


class ManagementMixin:
    """Listing, steps, fork and versions, for :class:`~taskflow.client.Client` and
    :class:`~taskflow.app.Taskflow` alike."""

    clock: Clock

    # Provided by the class this is mixed into.
    @property
    def broker(self) -> Broker:  # pragma: no cover - overridden
        raise NotImplementedError

    def _workflow_handle(
        self, workflow_id: str, name: str | None
    ) -> WorkflowHandle[Any]:  # pragma: no cover - overridden
        """A handle on ``workflow_id`` (decoding results as workflow ``name`` does, when the
        code is known)."""
        raise NotImplementedError

    def _check_queue(self, name: str) -> Queue:  # pragma: no cover - overridden
        """The declaration of a known queue, else :class:`UnknownQueueError`."""
        raise NotImplementedError

    # -- listing ---------------------------------------------------------------------------
    def list_workflows(
        self,
        status: StatusFilter | None = None,
        name: str | None = None,
        queue: str | None = None,
        user: str | None = None,
        app_version: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = True,
        load_inputs: bool = False,
        load_outputs: bool = False,
    ) -> list[WorkflowInfo]:
        """Workflows matching every filter given, newest first (``newest_first=False``:
        oldest first), by creation time.

        ``status`` is one status (a :class:`Status` or its name) or a list of them; ``name``
        the registered workflow name; ``queue``, ``user`` and ``app_version`` match exactly;
        ``start`` (inclusive) and ``end`` (exclusive) bound the creation time (naive
        datetimes are UTC). ``limit`` (None: all) and ``offset`` page through the result.
        Inputs (``{"args": [...], "kwargs": {...}}``) and outputs are read only with
        ``load_inputs`` / ``load_outputs``, as JSON types. Each filter is served by an index.
        A bad filter raises :class:`ConfigurationError` naming it.
        """
        where = WorkflowFilter(
            statuses=_statuses(status),
            name=_text("list_workflows: name", name),
            queue=_text("list_workflows: queue", queue),
            user=_text("list_workflows: user", user),
            app_version=_text("list_workflows: app_version", app_version),
            created_from=_ms("start", start),
            created_before=_ms("end", end),
        )
        if (
            where.created_from is not None
            and where.created_before is not None
            and where.created_from >= where.created_before
        ):
            raise ConfigurationError(f"list_workflows: start ({start}) must be before end ({end})")
        page = None if limit is None else _count("limit", limit, 1)
        skip = _count("offset", offset, 0)
        flags = [
            _flag(what, value)
            for what, value in (
                ("newest_first", newest_first),
                ("load_inputs", load_inputs),
                ("load_outputs", load_outputs),
            )
        ]
        # Everything is checked before the database is touched.
        rows = self.broker.list_workflows(where, page, skip, *flags)
        return [listed_info(r, load_inputs, load_outputs) for r in rows]

    def steps(self, workflow_id: str) -> list[StepInfo]:
        """The recorded steps of a workflow, in order: id, name, status (SUCCESS or ERROR),
        error, the child workflow it started, and its times. Step outputs are not loaded.
        Raises :class:`UnknownWorkflowError` when no workflow has that id."""
        checked = _workflow_id("steps", workflow_id)
        rows = self.broker.load_steps(checked)
        if not rows and self.broker.get_status(checked) is None:
            raise UnknownWorkflowError(f"steps: no workflow with id {checked!r}")
        return [step_info(r) for r in rows]

    # -- fork ------------------------------------------------------------------------------
    def fork(
        self,
        workflow_id: str,
        start_step: int,
        app_version: str | None = None,
        queue: str | None = None,
        *,
        new_id: str | None = None,
    ) -> WorkflowHandle[Any]:
        """Start a new workflow that replays the steps of ``workflow_id`` before
        ``start_step`` from their recorded outcomes and runs from ``start_step`` on.

        The fork has a new id (``new_id``, else a UUID), the original's name and inputs,
        user, priority and timeout, and is ENQUEUED on ``queue`` (else the original's queue,
        else ``default``) for workers of ``app_version`` (else the original's version): give
        another version to move the work onto new code. It also gets the events and stream
        values the original wrote before step ``start_step`` started (the replayed steps
        do not write them again); messages are not copied. ``start_step=0`` runs it again
        from the start. The original is left as it is.

        Raises :class:`UnknownWorkflowError` for an unknown id, :class:`UnknownQueueError`
        for an unknown queue, and :class:`ConfigurationError` for a bad argument (or a
        partitioned target queue when the original has no partition key). A ``new_id``
        that exists already returns that workflow's handle
        (:class:`WorkflowConflictError` if it is another workflow's name).
        """
        checked = _workflow_id("fork", workflow_id)
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            raise ConfigurationError(
                f"fork: start_step must be an integer >= 0 (a step id, see steps()), got "
                f"{start_step!r}"
            )
        version = _text("fork: app_version", app_version)
        fork_id = _text("fork: new_id", new_id) or str(uuid.uuid4())
        original = self.broker.get_workflow(checked)
        if original is None:
            raise UnknownWorkflowError(f"fork: no workflow with id {checked!r}")
        own_queue = original.queue or DEFAULT_QUEUE
        target = validate_queue_name(queue) if queue is not None else own_queue
        key = original.partition_key
        if queue is not None:
            spec = self._check_queue(target)
            if not spec.partitioned:
                key = None
            elif key is None:
                raise ConfigurationError(
                    f"fork: queue {target!r} is partitioned, and workflow {checked!r} has no "
                    "partition key; fork it onto a queue that is not partitioned"
                )
        result = self.broker.fork_workflow(
            checked,
            fork_id,
            start_step,
            now_ms(self.clock),
            queue=target,
            app_version=version,
            partition_key=key,
        )
        if result is None:
            raise UnknownWorkflowError(f"fork: no workflow with id {checked!r}")
        if not result.created:
            existing = self.broker.get_workflow(fork_id)
            if existing is not None and existing.name != original.name:
                raise WorkflowConflictError(
                    f"fork: workflow id {fork_id!r} belongs to workflow {existing.name!r}, "
                    f"not {original.name!r}"
                )
        return self._workflow_handle(fork_id, original.name)

    # -- versions --------------------------------------------------------------------------
    def list_versions(self) -> list[VersionInfo]:
        """Every app version workers have run (each worker records its version when it
        starts), the latest first."""
        return [version_info(r) for r in self.broker.list_versions()]

    def latest_version(self) -> VersionInfo | None:
        """The latest app version: the one first seen last, unless
        :meth:`set_latest_version` chose another since. None before any worker ran."""
        versions = self.broker.list_versions()
        return version_info(versions[0]) if versions else None

    def set_latest_version(self, version: str) -> None:
        """Make a recorded app version the latest, e.g. to roll back: when two versions
        declare a queue differently, the latest one's limits apply (from its workers' next
        declaration on). Raises :class:`ConfigurationError` for a version no worker
        recorded."""
        checked = _text("set_latest_version: version", version)
        if checked is None:
            raise ConfigurationError("set_latest_version: give a version")
        if not self.broker.set_latest_version(checked, now_ms(self.clock)):
            known = ", ".join(repr(r.version) for r in self.broker.list_versions()) or "none"
            raise ConfigurationError(
                f"set_latest_version: no app version {checked!r} is recorded (known: {known})"
            )


def _workflow_id(action: str, workflow_id: object) -> str:
    if not isinstance(workflow_id, str) or not workflow_id:
        raise ConfigurationError(
            f"{action}: the workflow id must be a non-empty string, got {workflow_id!r}"
        )
    return workflow_id


__all__ = ["ManagementMixin", "StatusFilter", "listed_info", "version_info"]
