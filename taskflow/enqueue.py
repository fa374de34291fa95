"""Turning ``apply_async`` options into workflow rows, and enqueue results into ids.

Kept apart from the app so the rules (what DELAYED means, how dedup answers, which options
clash) read in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from taskflow.broker.base import Broker
from taskflow.errors import (
    ConfigurationError,
    WorkflowConflictError,
    WorkflowDeduplicatedError,
)
from taskflow.models import EnqueueResult, NewWorkflow
from taskflow.queues import Queue
from taskflow.status import Status
from taskflow.task import EnqueueOptions, Workflow, check_priority, check_seconds

Call = tuple[tuple[Any, ...], dict[str, Any]]


def _epoch_ms(when: datetime) -> int:
    # Celery treats a naive eta as UTC (enable_utc); do the same rather than guess local time.
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def validate(wf: Workflow[..., Any], options: EnqueueOptions, queue: Queue | None) -> None:
    """Refuse options that are wrong alone or together, naming the value."""
    validate_options(wf.name, options, queue)


def validate_options(name: str, options: EnqueueOptions, queue: Queue | None) -> None:
    """:func:`validate` for a workflow known only by ``name`` (a ``Client`` enqueues by
    name, without the code): the same rules, the same messages."""
    owner = f"workflow {name!r}"
    check_priority(options.priority)
    check_seconds(owner, "timeout", options.timeout)
    if options.countdown is not None:
        if isinstance(options.countdown, bool) or not isinstance(options.countdown, int | float):
            raise ConfigurationError(
                f"{owner}: countdown must be seconds, got {options.countdown!r}"
            )
        if options.eta is not None:
            raise ConfigurationError(f"{owner}: give countdown or eta, not both")
    if options.eta is not None and not isinstance(options.eta, datetime):
        raise ConfigurationError(f"{owner}: eta must be a datetime, got {options.eta!r}")
    expires = options.expires
    if expires is not None and not isinstance(expires, datetime):
        check_seconds(owner, "expires", expires)
    if options.dedup_policy not in ("reject", "return_existing"):
        raise ConfigurationError(
            f"{owner}: dedup_policy must be 'reject' or 'return_existing', "
            f"got {options.dedup_policy!r}"
        )
    if options.dedup_id is not None and (
        not isinstance(options.dedup_id, str) or not options.dedup_id
    ):
        raise ConfigurationError(f"{owner}: dedup_id must be a non-empty string")
    key = options.partition_key
    if key is not None and (not isinstance(key, str) or not key):
        raise ConfigurationError(f"{owner}: partition_key must be a non-empty string, got {key!r}")
    if key is not None and options.dedup_id is not None:
        raise ConfigurationError(f"{owner}: partition_key and dedup_id cannot be used together")
    partitioned = queue is not None and queue.partitioned
    name = queue.name if queue is not None else "?"
    if partitioned and key is None:
        raise ConfigurationError(f"{owner}: queue {name!r} is partitioned: give partition_key")
    if key is not None and not partitioned:
        raise ConfigurationError(
            f"{owner}: partition_key {key!r} given, but queue {name!r} is not partitioned "
            f"(declare it with app.queue({name!r}, partitioned=True))"
        )
    for what, value in (("user", options.user), ("app_version", options.app_version)):
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{owner}: {what} must be a string, got {value!r}")


def new_workflows(
    wf: Workflow[..., Any],
    calls: Sequence[Call],
    options: EnqueueOptions,
    queue: str,
    now: int,
    ids: Sequence[str] | None = None,
    parent_id: str | None = None,
    user: str | None = None,
) -> list[NewWorkflow]:
    """The rows to write for ``calls`` (arguments are serialized here, so a bad one fails
    before anything is written)."""
    return build_rows(
        wf.name,
        calls,
        options,
        queue,
        now,
        wf.signature.encode_inputs,
        default_timeout=wf.timeout,
        default_priority=wf.priority,
        ids=ids,
        parent_id=parent_id,
        user=user,
    )


def build_rows(
    name: str,
    calls: Sequence[Call],
    options: EnqueueOptions,
    queue: str,
    now: int,
    encode: Callable[[Sequence[object], Mapping[str, object], str], str],
    *,
    default_timeout: float | None = None,
    default_priority: int | None = None,
    ids: Sequence[str] | None = None,
    parent_id: str | None = None,
    user: str | None = None,
) -> list[NewWorkflow]:
    """:func:`new_workflows` for a workflow known only by ``name``: ``encode`` serializes
    one call's arguments (as ``Signature.encode_inputs`` does); the defaults stand in for
    the registered workflow's ``timeout`` and ``priority``."""
    delay_until: int | None = None
    if options.countdown is not None:
        delay_until = now + int(options.countdown * 1000)
    elif options.eta is not None:
        delay_until = _epoch_ms(options.eta)
    expires_at: int | None = None
    if isinstance(options.expires, datetime):
        expires_at = _epoch_ms(options.expires)
    elif options.expires is not None:
        expires_at = now + int(options.expires * 1000)
    delayed = delay_until is not None and delay_until > now
    timeout = options.timeout if options.timeout is not None else default_timeout
    priority = options.priority if options.priority is not None else default_priority
    rows: list[NewWorkflow] = []
    what = f"workflow {name!r}"
    for i, (args, kwargs) in enumerate(calls):
        wid = ids[i] if ids is not None else str(uuid.uuid4())
        rows.append(
            NewWorkflow(
                id=wid,
                name=name,
                status=Status.DELAYED if delayed else Status.ENQUEUED,
                inputs=encode(args, kwargs, what),
                queue=queue,
                app_version=options.app_version,
                user=options.user if options.user is not None else user,
                parent_id=parent_id,
                priority=priority,
                partition_key=options.partition_key,
                dedup_id=options.dedup_id,
                created_at=now,
                timeout_ms=int(timeout * 1000) if timeout else None,
                delay_until=delay_until if delayed else None,
                expires_at=expires_at,
            )
        )
    return rows


def resolve(
    broker: Broker,
    results: Sequence[EnqueueResult],
    options: EnqueueOptions,
    queue: str,
    name: str,
) -> list[str]:
    """The id each enqueue stands for: the new one, the existing one for a taken id (which
    must belong to a workflow of the same name), or (dedup) the holder's with
    ``return_existing``; ``reject`` raises."""
    ids: list[str] = []
    for result in results:
        if result.created:
            ids.append(result.id)
            continue
        if result.conflict == "id":
            existing = broker.get_workflow(result.existing_id or result.id)
            if existing is not None and existing.name != name:
                raise WorkflowConflictError(
                    f"workflow id {existing.id!r} belongs to workflow {existing.name!r}, "
                    f"not {name!r}"
                )
            ids.append(result.existing_id or result.id)
            continue
        holder = result.existing_id or broker.find_dedup(queue, options.dedup_id or "")
        if options.dedup_policy == "return_existing" and holder is not None:
            ids.append(holder)
            continue
        raise WorkflowDeduplicatedError(
            f"queue {queue!r} already has a waiting or running workflow with dedup_id "
            f"{options.dedup_id!r}" + (f" (workflow {holder!r})" if holder else "")
        )
    return ids


__all__ = ["Call", "build_rows", "new_workflows", "resolve", "validate", "validate_options"]
