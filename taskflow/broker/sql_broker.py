"""The part of a broker that is the same on every dialect: each method runs one named query
(``sql/<dialect>/<name>.sql``) and turns its rows into models. A dialect supplies how to run
a query (``_one``, ``_all``), its connections, its migrations and ``record_step``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from taskflow.broker.base import Broker, PendingRef
from taskflow.models import NewWorkflow, StartResult, StepRow, WorkflowRow
from taskflow.status import Status


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
    )


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


class SQLBroker(Broker):
    """A broker whose operations are the named queries of its dialect."""

    @abc.abstractmethod
    def _one(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run a named query (committing at once) and return its first row."""

    @abc.abstractmethod
    def _all(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run a named query and return all its rows."""

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


__all__ = ["SQLBroker", "start_params", "step_params", "step_row", "workflow_row"]
