"""The workflow state machine.

::

    ENQUEUED ──claim──▶ PENDING ──▶ SUCCESS | ERROR
    DELAYED ──due──▶ ENQUEUED        PENDING ──cancel/timeout──▶ CANCELLED
    PENDING ──crash, recovered too often──▶ MAX_RECOVERY_ATTEMPTS_EXCEEDED
    CANCELLED | ERROR | MAX_RECOVERY_ATTEMPTS_EXCEEDED ──resume──▶ ENQUEUED
        (DELAYED instead while a delay it was given earlier has not passed)

PENDING means *running* (as in DBOS), not Celery's "unknown".
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """A workflow's status. A ``str`` enum, so ``handle.status == "SUCCESS"`` holds."""

    ENQUEUED = "ENQUEUED"
    DELAYED = "DELAYED"
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    MAX_RECOVERY_ATTEMPTS_EXCEEDED = "MAX_RECOVERY_ATTEMPTS_EXCEEDED"

    @property
    def is_finished(self) -> bool:
        """True for the statuses a workflow leaves only by an explicit resume."""
        return self in FINISHED


FINISHED = frozenset(
    {Status.SUCCESS, Status.ERROR, Status.CANCELLED, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED}
)
"""Statuses in which nothing runs and ``get()`` returns."""

RESUMABLE = frozenset({Status.CANCELLED, Status.ERROR, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED})
"""Statuses an operator may resume from."""

__all__ = ["FINISHED", "RESUMABLE", "Status"]
