"""The one interface every system database backend implements.

The broker stores opaque payloads (JSON text) and never sees a Python callable, so a producer
that never imports the task code can use it, and one conformance suite tests every backend.
Timestamps are passed in by the caller (milliseconds since the epoch), which keeps the clock
injectable.
"""

from __future__ import annotations

import abc
from importlib import resources

import msgspec

from taskflow.broker.url import DatabaseURL
from taskflow.models import NewWorkflow, StartResult, StepRow, WorkflowRow
from taskflow.status import Status


class StepWrite(msgspec.Struct, frozen=True):
    """What checkpointing a step found: whether this call recorded it (False: another
    executor did first, and ``existing`` holds that outcome) and the workflow's status."""

    inserted: bool
    status: Status | None
    existing: StepRow | None = None


class PendingRef(msgspec.Struct, frozen=True):
    """A running workflow owned by another executor."""

    id: str
    name: str
    executor_id: str
    parent_id: str | None


def load_queries(dialect: str, schema: str | None = None) -> dict[str, str]:
    """Every named query of a dialect, from ``sql/<dialect>/<name>.sql``."""
    folder = resources.files("taskflow.broker") / "sql" / dialect
    queries: dict[str, str] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            text = entry.read_text(encoding="utf-8")
            if schema is not None:
                # The schema name was validated as a plain identifier; quote it anyway.
                text = text.replace("{schema}", f'"{schema}"')
            queries[entry.name[:-4]] = text
    return queries


class Broker(abc.ABC):
    """A system database. Safe to share between threads of one process; after ``fork()`` a
    child process reopens its connections on first use."""

    dialect: str
    url: DatabaseURL

    # -- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> int:
        """Bring the schema to the newest version; return the number of migrations applied.
        Safe when many processes call it at once."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The newest migration applied (0 on an empty database)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection."""

    # -- workflows -------------------------------------------------------------------------
    @abc.abstractmethod
    def start_workflow(self, new: NewWorkflow, now: int) -> StartResult:
        """Insert a workflow row unless its id exists; then return the existing row."""

    @abc.abstractmethod
    def get_workflow(self, workflow_id: str) -> WorkflowRow | None:
        """The stored workflow, or None."""

    @abc.abstractmethod
    def get_status(self, workflow_id: str) -> Status | None:
        """Only the status of a workflow (cheap, for polling), or None."""

    @abc.abstractmethod
    def finish_workflow(
        self,
        workflow_id: str,
        status: Status,
        output: str | None,
        error: str | None,
        now: int,
    ) -> bool:
        """Record a final outcome if the workflow is still PENDING; True if it was recorded."""

    @abc.abstractmethod
    def set_status(
        self,
        workflow_id: str,
        status: Status,
        expected: Status,
        now: int,
        error: str | None = None,
    ) -> bool:
        """Move a workflow from ``expected`` to ``status``; True if it was in ``expected``."""

    # -- steps -----------------------------------------------------------------------------
    @abc.abstractmethod
    def record_step(self, workflow_id: str, step: StepRow) -> StepWrite:
        """Checkpoint a step outcome (one round trip, one commit) and report the workflow's
        status, so a cancelled workflow stops at its next step."""

    @abc.abstractmethod
    def load_steps(self, workflow_id: str) -> list[StepRow]:
        """Every recorded step of a workflow, in order."""

    # -- recovery --------------------------------------------------------------------------
    @abc.abstractmethod
    def list_pending(self, app_version: str) -> list[PendingRef]:
        """PENDING workflows of ``app_version`` with their owners (the caller judges which
        owners are gone)."""

    @abc.abstractmethod
    def claim_for_recovery(
        self, workflow_id: str, from_executor: str, executor_id: str, now: int
    ) -> WorkflowRow | None:
        """Take over a PENDING workflow still owned by ``from_executor``, counting an
        attempt; None if it is no longer so (someone else took it, or it finished)."""


__all__ = ["Broker", "PendingRef", "StepWrite", "load_queries"]
