"""The part of a broker that is the same on every dialect: each method runs one named query
(``sql/<dialect>/<name>.sql``) and turns its rows into models. A dialect supplies how to run
a query (``_one``, ``_all``), how to bind a list (``_list_param``), its connections, its
migrations, and the multi-statement operations (``record_step``, enqueue, claim, tick).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from taskflow.broker.base import Broker, PendingRef, PruneResult, StreamRead
from taskflow.broker.flow_control import queue_record
from taskflow.broker.schedule_store import ScheduleQueries
from taskflow.models import (
    DelayedRef,
    EnqueueResult,
    ExecutorBeat,
    NewWorkflow,
    OrphanRef,
    QueueDepth,
    RunningRef,
    StartResult,
    StepRow,
    Wait,
    WorkflowRow,
)
from taskflow.queues import QueueRecord
from taskflow.status import Status

DEFAULT_QUEUE = "default"
"""Where enqueued work without a queue goes (a NULL queue is never claimed)."""


def workflow_row(values: Sequence[Any]) -> WorkflowRow:
    """Build a :class:`WorkflowRow` from a row selected in ``get_workflow.sql`` order."""
    (
        id_,
        name,
        status,
        inputs,
        output,
        error,
        queue,
        executor_id,
        app_version,
        user,
        parent_id,
        priority,
        attempts,
        created_at,
        started_at,
        finished_at,
        timeout_ms,
        deadline_at,
        partition_key,
        dedup_id,
        delay_until,
        expires_at,
        retries,
    ) = values
    return WorkflowRow(
        id=id_,
        name=name,
        status=Status(status),
        inputs=inputs,
        output=output,
        error=error,
        queue=queue,
        executor_id=executor_id,
        app_version=app_version,
        user=user,
        parent_id=parent_id,
        priority=priority or None,
        attempts=attempts,
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        timeout_ms=timeout_ms,
        deadline_at=deadline_at,
        partition_key=partition_key,
        dedup_id=dedup_id,
        delay_until=delay_until,
        expires_at=expires_at,
        retries=retries,
    )


WORKFLOW_COLUMNS = 23
"""How many columns :func:`workflow_row` reads."""


def step_row(values: Sequence[Any]) -> StepRow:
    """Build a :class:`StepRow` from a row selected in ``load_steps.sql`` order."""
    step_id, name, output, error, child, started_at, finished_at = values
    return StepRow(
        step_id=step_id,
        name=name,
        output=output,
        error=error,
        child_workflow_id=child,
        started_at=started_at,
        finished_at=finished_at,
    )


def start_params(new: NewWorkflow, now: int) -> dict[str, Any]:
    """Bind parameters of ``start_workflow.sql``."""
    return {
        "id": new.id,
        "name": new.name,
        "status": new.status.value,
        "queue": new.queue,
        "priority": new.priority or 0,
        "inputs": new.inputs,
        "executor_id": new.executor_id,
        "app_version": new.app_version,
        "user": new.user,
        "parent_id": new.parent_id,
        "attempts": 1 if new.status is Status.PENDING else 0,
        "now": now,
        "started_at": new.started_at,
        "timeout_ms": new.timeout_ms,
        "deadline_at": new.deadline_at,
    }


def step_params(workflow_id: str, step: StepRow) -> dict[str, Any]:
    """Bind parameters of ``record_step.sql``."""
    return {
        "workflow_id": workflow_id,
        "step_id": step.step_id,
        "name": step.name,
        "output": step.output,
        "error": step.error,
        "child_workflow_id": step.child_workflow_id,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
    }


def park_params(
    workflow_id: str, executor_id: str, wait: Wait, now: int, default_queue: str, channel: str
) -> dict[str, Any]:
    """Bind parameters of ``park.sql``."""
    return {
        "id": workflow_id,
        "executor_id": executor_id,
        "kind": wait.kind,
        "until": wait.until,
        "wait_on": wait.wait_on,
        "wait_key": wait.wait_key,
        "now": now,
        "default_queue": default_queue,
        "channel": channel,
    }


def send_params(
    destination_id: str,
    topic: str,
    message: str,
    now: int,
    send_key: str | None,
    sender: tuple[str, int, str] | None,
) -> dict[str, Any]:
    """Bind parameters of ``send_message.sql`` (the Postgres broker adds its channels)."""
    return {
        "destination_id": destination_id,
        "topic": topic,
        "message": message,
        "send_key": send_key,
        "now": now,
        "sender_id": sender[0] if sender else None,
        "step_id": sender[1] if sender else None,
        "step_name": sender[2] if sender else None,
    }


def take_params(
    workflow_id: str, topic: str, step_id: int, step_name: str, started_at: int, now: int
) -> dict[str, Any]:
    """Bind parameters of ``take_message.sql``."""
    return {
        "workflow_id": workflow_id,
        "topic": topic,
        "step_id": step_id,
        "step_name": step_name,
        "started_at": started_at,
        "now": now,
    }


def event_params(
    workflow_id: str, key: str, value: str, now: int, step: tuple[int, str] | None
) -> dict[str, Any]:
    """Bind parameters of ``set_event.sql`` (the Postgres broker adds its channels)."""
    return {
        "workflow_id": workflow_id,
        "key": key,
        "value": value,
        "now": now,
        "step_id": step[0] if step else None,
        "step_name": step[1] if step else None,
    }


def enqueue_status(new: NewWorkflow, now: int) -> str:
    """DELAYED when the workflow may not start yet, else ENQUEUED."""
    return "DELAYED" if new.delay_until is not None and new.delay_until > now else "ENQUEUED"


ConflictLookup = Callable[[list[int]], dict[int, tuple[bool, str | None]]]
"""Given indexes of entries that wrote nothing: for each, whether its id exists and which
workflow holds its dedup key."""


def enqueue_results(
    news: Sequence[NewWorkflow],
    inserted: dict[str, str | None],
    conflicts: ConflictLookup,
) -> list[EnqueueResult]:
    """One result per entry, in order, from what an enqueue inserted (``id -> dedup_id``).

    Of several entries with one id, the first that matches the inserted row is the created
    one; the others, and every entry not inserted, are explained by ``conflicts``, which is
    called (once) only when some entry was not created."""
    results: list[EnqueueResult | None] = []
    missing: list[int] = []
    seen: set[str] = set()
    for i, new in enumerate(news):
        wid = new.id
        if wid in inserted and wid not in seen and inserted[wid] == new.dedup_id:
            seen.add(wid)
            results.append(EnqueueResult(id=wid, created=True))
        else:
            results.append(None)
            missing.append(i)
    if missing:
        found = conflicts(missing)
        for i in missing:
            new = news[i]
            exists, holder = found.get(i, (False, None))
            results[i] = conflict_result(new, exists, holder)
    return [r for r in results if r is not None]


def conflict_result(new: NewWorkflow, id_exists: bool, holder: str | None) -> EnqueueResult:
    """Why an entry wrote nothing. Should both rows have vanished since (retention, or the
    holder finished), the likelier cause is reported without an ``existing_id``."""
    if id_exists:
        return EnqueueResult(id=new.id, created=False, conflict="id", existing_id=new.id)
    if holder is not None or new.dedup_id is not None:
        return EnqueueResult(id=new.id, created=False, conflict="dedup", existing_id=holder)
    return EnqueueResult(id=new.id, created=False, conflict="id")


class SQLBroker(ScheduleQueries, Broker):
    """A broker whose operations are the named queries of its dialect."""

    channel: str = ""
    """The notification channel enqueues wake workers on (empty where there is none)."""

    @abc.abstractmethod
    def _list_param(self, values: Sequence[str]) -> object:
        """A list of strings as a bind parameter (an array, or JSON text for SQLite)."""

    # _one, _all and _run are declared by ScheduleQueries, which this class mixes in.

    # -- workflows -------------------------------------------------------------------------
    def start_workflow(self, new: NewWorkflow, now: int) -> StartResult:
        """Insert unless the id exists (then return the existing row)."""
        if self._one("start_workflow", start_params(new, now)) is not None:
            return StartResult(created=True)
        return StartResult(created=False, row=self.get_workflow(new.id))

    def get_workflow(self, workflow_id: str) -> WorkflowRow | None:
        """The stored row, or None."""
        row = self._one("get_workflow", {"id": workflow_id})
        return workflow_row(row) if row is not None else None

    def get_status(self, workflow_id: str) -> Status | None:
        """Only the status, or None."""
        row = self._one("get_status", {"workflow_id": workflow_id})
        return Status(row[0]) if row is not None else None

    def finish_workflow(
        self, workflow_id: str, status: Status, output: str | None, error: str | None, now: int
    ) -> bool:
        """Record the outcome if still PENDING."""
        params = {
            "id": workflow_id,
            "status": status.value,
            "output": output,
            "error": error,
            "now": now,
        }
        return self._one("finish_workflow", params) is not None

    def set_status(
        self, workflow_id: str, status: Status, expected: Status, now: int, error: str | None = None
    ) -> bool:
        """Guarded status change."""
        params = {
            "id": workflow_id,
            "status": status.value,
            "expected": expected.value,
            "now": now,
            "error": error,
            "finished_at": now if status.is_finished else None,
        }
        return self._one("set_status", params) is not None

    # -- steps -----------------------------------------------------------------------------
    def _get_step(self, workflow_id: str, step_id: int) -> StepRow | None:
        row = self._one("get_step", {"workflow_id": workflow_id, "step_id": step_id})
        return step_row(row) if row is not None else None

    def forget_step(self, workflow_id: str, step_id: int) -> bool:
        """Delete a recorded step error (one statement)."""
        rows = self._all("forget_step", {"workflow_id": workflow_id, "step_id": step_id})
        return bool(rows)

    def load_steps(self, workflow_id: str) -> list[StepRow]:
        """Recorded steps in order."""
        return [step_row(r) for r in self._all("load_steps", {"workflow_id": workflow_id})]

    # -- recovery --------------------------------------------------------------------------
    def list_pending(self, app_version: str) -> list[PendingRef]:
        """Recovery candidates."""
        rows = self._all("list_pending", {"app_version": app_version})
        return [PendingRef(id=r[0], name=r[1], executor_id=r[2], parent_id=r[3]) for r in rows]

    def claim_for_recovery(
        self, workflow_id: str, from_executor: str, executor_id: str, now: int
    ) -> WorkflowRow | None:
        """Guarded takeover, counting an attempt."""
        params = {
            "id": workflow_id,
            "from_executor": from_executor,
            "executor_id": executor_id,
            "now": now,
        }
        row = self._one("claim_for_recovery", params)
        return workflow_row(row) if row is not None else None

    # -- queues ----------------------------------------------------------------------------
    def release(
        self,
        executor_id: str,
        ids: Sequence[str],
        now: int,
        *,
        count_attempt: bool,
        default_queue: str = DEFAULT_QUEUE,
    ) -> list[str]:
        """Guarded hand-back of running workflows to their queues (one statement)."""
        if not ids:
            return []
        params = {
            "executor_id": executor_id,
            "ids": self._list_param(list(ids)),
            "now": now,
            "count_attempt": count_attempt,
            "default_queue": default_queue,
            "channel": self.channel,
        }
        done = {r[0] for r in self._all("release", params)}
        return [i for i in dict.fromkeys(ids) if i in done]

    def retry_later(
        self, workflow_id: str, executor_id: str, delay_until: int, error: str | None, now: int
    ) -> bool:
        """Guarded workflow-level retry (one statement)."""
        params = {
            "id": workflow_id,
            "executor_id": executor_id,
            "delay_until": delay_until,
            "error": error,
            "now": now,
            "channel": self.channel,
        }
        return self._one("retry_later", params) is not None

    def find_dedup(self, queue: str, dedup_id: str) -> str | None:
        """The holder of a dedup key, or None."""
        row = self._one("find_dedup", {"queue": queue, "dedup_id": dedup_id})
        return str(row[0]) if row is not None else None

    def register_queues(self, names: Sequence[str], now: int) -> None:
        """Upsert queue names (sorted, so concurrent registrations lock in one order)."""
        unique = sorted(set(names))
        if unique:
            self._run("register_queues", {"names": self._list_param(unique), "now": now})

    def known_queues(self) -> set[str]:
        """Every registered queue name."""
        return {r[0] for r in self._all("known_queues", {})}

    def queue_depths(self) -> list[QueueDepth]:
        """One aggregate over the waiting and running rows (partial indexes hold them)."""
        return [
            QueueDepth(q, key, int(e or 0), int(d or 0), int(r or 0))
            for q, key, e, d, r in self._all("queue_depths", {})
        ]

    def queue_specs(self) -> dict[str, QueueRecord]:
        """Every recorded queue, by name."""
        records = (queue_record(r) for r in self._all("queue_specs", {}))
        return {r.queue.name: r for r in records}

    # -- events and parked waits -----------------------------------------------------------
    def get_event(self, workflow_id: str, key: str) -> tuple[str | None, Status | None]:
        """One query: the value and the workflow's status."""
        row = self._one("get_event", {"workflow_id": workflow_id, "key": key})
        if row is None:
            return None, None
        return row[0], Status(row[1]) if row[1] is not None else None

    def park(
        self,
        workflow_id: str,
        executor_id: str,
        wait: Wait,
        now: int,
        default_queue: str = DEFAULT_QUEUE,
    ) -> Status | None:
        """One statement (see ``park.sql``)."""
        params = park_params(workflow_id, executor_id, wait, now, default_queue, self.channel)
        row = self._one("park", params)
        return Status(row[0]) if row is not None else None

    # -- streams ---------------------------------------------------------------------------
    def read_stream(self, workflow_id: str, key: str, after: int, limit: int) -> StreamRead:
        """One query (see ``read_stream.sql``)."""
        params = {"workflow_id": workflow_id, "key": key, "after": after, "limit": limit}
        found = self._all("read_stream", params)
        if not found:
            return StreamRead(rows=[], status=None)
        rows = [(int(offset), value) for _, offset, value in found if offset is not None]
        return StreamRead(rows=rows, status=Status(found[0][0]))

    # -- retention -------------------------------------------------------------------------
    def count_prunable(self, before_ms: int, now: int) -> PruneResult:
        """One query (see ``count_prunable.sql``)."""
        row = self._one("count_prunable", {"before": before_ms, "now": now})
        assert row is not None  # scalar subqueries: always one row
        return PruneResult(*(int(n) for n in row))

    def purge_queue(self, queue: str, now: int) -> list[str]:
        """One recursive statement (see ``purge_queue.sql``)."""
        return [r[0] for r in self._all("purge_queue", {"queue": queue, "now": now})]

    # -- heartbeats ------------------------------------------------------------------------
    def heartbeat(self, beat: ExecutorBeat) -> None:
        """Upsert the executor's row."""
        params = {
            "executor_id": beat.executor_id,
            "kind": beat.kind,
            "name": beat.name,
            "hostname": beat.hostname,
            "pid": beat.pid,
            "app_version": beat.app_version,
            "queues": msgspec.json.encode(beat.queues).decode(),
            "concurrency": beat.concurrency,
            "started_at": beat.started_at,
            "heartbeat_at": beat.heartbeat_at,
            "pool": beat.pool,
            "workflows": (
                msgspec.json.encode(beat.workflows).decode() if beat.workflows is not None else None
            ),
        }
        self._run("heartbeat", params)

    def remove_executor(self, executor_id: str) -> None:
        """Delete the executor's row (a no-op when there is none)."""
        self._run("remove_executor", {"executor_id": executor_id})

    def list_executors(self) -> list[ExecutorBeat]:
        """Every heartbeat row, oldest executor first."""
        return [
            ExecutorBeat(
                executor_id=r[0],
                kind=r[1],
                name=r[2],
                hostname=r[3],
                pid=r[4],
                app_version=r[5],
                queues=msgspec.json.decode(r[6], type=list[str]),
                concurrency=r[7],
                started_at=r[8],
                heartbeat_at=r[9],
                pool=r[10],
                workflows=msgspec.json.decode(r[11], type=list[str]) if r[11] is not None else None,
            )
            for r in self._all("list_executors", {})
        ]

    def stale_executors(self, cutoff: int) -> list[tuple[str, bool]]:
        """Owners of PENDING workflows without a heartbeat at or after ``cutoff``."""
        return [(r[0], bool(r[1])) for r in self._all("stale_executors", {"cutoff": cutoff})]

    def orphans(self, executor_id: str) -> list[OrphanRef]:
        """PENDING workflows of one executor with their parents' status, oldest first."""
        return [
            OrphanRef(
                id=r[0],
                name=r[1],
                executor_id=r[2],
                queue=r[3],
                parent_id=r[4],
                parent_status=Status(r[5]) if r[5] is not None else None,
            )
            for r in self._all("orphans", {"executor_id": executor_id})
        ]

    # -- inspection ------------------------------------------------------------------------
    def running_by_executor(self) -> dict[str, dict[str, int]]:
        """One aggregate over the running rows (the partial index on PENDING holds them)."""
        out: dict[str, dict[str, int]] = {}
        for executor_id, name, count in self._all("running_by_executor", {}):
            out.setdefault(executor_id, {})[name] = int(count)
        return out

    def list_running(self, limit: int) -> list[RunningRef]:
        """Running workflows by executor, oldest start first, without their payloads."""
        return [
            RunningRef(
                id=r[0], name=r[1], executor_id=r[2], queue=r[3], started_at=r[4], attempts=r[5]
            )
            for r in self._all("list_running", {"limit": max(0, limit)})
        ]

    def list_delayed(self, limit: int, queue: str | None = None) -> list[DelayedRef]:
        """DELAYED workflows in wake order (the partial index on DELAYED holds them)."""
        params = {"limit": max(0, limit), "queue": queue}
        return [
            DelayedRef(
                id=r[0],
                name=r[1],
                queue=r[2],
                delay_until=r[3],
                wait_kind=r[4],
                wait_on=r[5],
                wait_key=r[6],
                retries=r[7],
                created_at=r[8],
            )
            for r in self._all("list_delayed", params)
        ]

    def finished_by_executor(self, since: int) -> dict[str, dict[Status, int]]:
        """One aggregate over the rows finished since ``since`` (``ix_workflows_finished``)."""
        out: dict[str, dict[Status, int]] = {}
        for executor_id, status, count in self._all("finished_by_executor", {"since": since}):
            out.setdefault(executor_id, {})[Status(status)] = int(count)
        return out


# -- debouncing ----------------------------------------------------------------------------------
def debounce_params(
    new: NewWorkflow, key: str, delay_ms: int, max_wait_ms: int | None, now: int
) -> dict[str, Any]:
    """Bind parameters of ``debounce_lock.sql`` and ``debounce.sql`` (the latter also needs
    ``current_id`` and ``push_until``, known once the key's row is locked: see
    :func:`debounce_until`)."""
    return {
        "name": new.name,
        "key": key,
        "new_id": new.id,
        "now": now,
        "new_until": debounce_until(now, delay_ms, max_wait_ms, now),
        "queue": new.queue or DEFAULT_QUEUE,
        "priority": new.priority or 0,
        "inputs": new.inputs,
        "app_version": new.app_version,
        "user": new.user,
        "parent_id": new.parent_id,
        "created_at": new.created_at,
        "timeout_ms": new.timeout_ms,
    }


def debounce_until(now: int, delay_ms: int, max_wait_ms: int | None, first_at: int) -> int:
    """When a debounced workflow may start: ``delay_ms`` after this call, but never later
    than ``max_wait_ms`` after the first call of its cycle."""
    until = now + delay_ms
    return until if max_wait_ms is None else min(until, first_at + max_wait_ms)


__all__ = [
    "DEFAULT_QUEUE",
    "WORKFLOW_COLUMNS",
    "ConflictLookup",
    "SQLBroker",
    "conflict_result",
    "debounce_params",
    "debounce_until",
    "enqueue_results",
    "enqueue_status",
    "event_params",
    "park_params",
    "send_params",
    "start_params",
    "step_params",
    "step_row",
    "take_params",
    "workflow_row",
]
