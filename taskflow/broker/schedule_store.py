"""The schedule half of the SQL brokers, the same on every dialect: schedules and the beat
lease as rows, the bind parameters of their named queries, and the operations that are one
statement each. The two operations that are a transaction (``put_schedules``,
``fire_schedule``) are written per dialect, in ``postgres.py`` and ``sqlite.py``.
"""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Sequence
from typing import Any

from taskflow.errors import ConfigurationError
from taskflow.models import BeatLease, ScheduleRow


def schedule_row(values: Sequence[Any]) -> ScheduleRow:
    """Build a :class:`ScheduleRow` from a row selected in ``get_schedule.sql`` order."""
    (
        name,
        workflow_name,
        expression,
        tz,
        context,
        inputs,
        backfill,
        queue,
        priority,
        options,
        source,
        paused,
        next_fire_at,
        last_fired_at,
        created_at,
        updated_at,
    ) = values
    return ScheduleRow(
        name=name,
        workflow_name=workflow_name,
        expression=expression,
        tz=tz,
        context=context,
        inputs=inputs,
        # SQLite gives the flags back as 0/1.
        backfill=bool(backfill),
        queue=queue,
        priority=priority,
        options=options,
        source=source,
        paused=bool(paused),
        next_fire_at=next_fire_at,
        last_fired_at=last_fired_at,
        created_at=created_at,
        updated_at=updated_at,
    )


def schedule_params(row: ScheduleRow) -> dict[str, Any]:
    """Bind parameters of ``create_schedule.sql`` (and, with ``now`` and ``replace_source``
    added, of one row of the SQLite ``put_schedules.sql``)."""
    return {
        "name": row.name,
        "workflow_name": row.workflow_name,
        "expression": row.expression,
        "tz": row.tz,
        "context": row.context,
        "inputs": row.inputs,
        "backfill": row.backfill,
        "queue": row.queue,
        "priority": row.priority,
        "options": row.options,
        "source": row.source,
        "paused": row.paused,
        "next_fire_at": row.next_fire_at,
        "last_fired_at": row.last_fired_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def sorted_schedules(rows: Sequence[ScheduleRow]) -> list[ScheduleRow]:
    """The rows in name order (concurrent writers then lock rows in one order); refuses a
    name given twice, which one upsert statement cannot write."""
    twice = sorted(name for name, n in Counter(r.name for r in rows).items() if n > 1)
    if twice:
        raise ConfigurationError(
            f"schedule names must be distinct, got {', '.join(map(repr, twice))} more than once"
        )
    return sorted(rows, key=lambda r: r.name)


def schedule_arrays(rows: Sequence[ScheduleRow]) -> dict[str, Any]:
    """Bind parameters of the Postgres ``put_schedules.sql``: one array per column."""
    return {
        "names": [r.name for r in rows],
        "workflow_names": [r.workflow_name for r in rows],
        "expressions": [r.expression for r in rows],
        "tzs": [r.tz for r in rows],
        "contexts": [r.context for r in rows],
        "inputs": [r.inputs for r in rows],
        "backfills": [r.backfill for r in rows],
        "queues": [r.queue for r in rows],
        "priorities": [r.priority for r in rows],
        "options": [r.options for r in rows],
        "sources": [r.source for r in rows],
        "pauseds": [r.paused for r in rows],
        "next_fire_ats": [r.next_fire_at for r in rows],
        "last_fired_ats": [r.last_fired_at for r in rows],
        "created_ats": [r.created_at for r in rows],
    }


def fire_params(
    name: str,
    expected_next: int,
    new_next: int,
    last_fired: int | None,
    lease: tuple[str, int] | None,
    now: int,
) -> dict[str, Any]:
    """Bind parameters of ``fire_schedule.sql``."""
    return {
        "name": name,
        "expected_next": expected_next,
        "new_next": new_next,
        "last_fired": last_fired,
        "holder": lease[0] if lease is not None else None,
        "term": lease[1] if lease is not None else None,
        "now": now,
    }


class ScheduleQueries(abc.ABC):
    """The one-statement schedule and lease operations of a broker whose operations are
    named queries (mixed into :class:`~taskflow.broker.sql_broker.SQLBroker`)."""

    @abc.abstractmethod
    def _one(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run a named query (committing at once) and return its first row."""

    @abc.abstractmethod
    def _all(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run a named query and return all its rows."""

    @abc.abstractmethod
    def _run(self, query: str, params: dict[str, Any]) -> None:
        """Run a named query that returns no rows (committing at once)."""

    def create_schedule(self, row: ScheduleRow) -> bool:
        """Insert unless the name exists (one statement)."""
        return self._one("create_schedule", schedule_params(row)) is not None

    def get_schedule(self, name: str) -> ScheduleRow | None:
        """The stored schedule, or None."""
        row = self._one("get_schedule", {"name": name})
        return schedule_row(row) if row is not None else None

    def list_schedules(self) -> list[ScheduleRow]:
        """Every schedule, by name."""
        return [schedule_row(r) for r in self._all("list_schedules", {})]

    def delete_schedule(self, name: str) -> bool:
        """Delete; True if it existed."""
        return self._one("delete_schedule", {"name": name}) is not None

    def pause_schedule(self, name: str, now: int) -> bool:
        """Pause; True if it exists."""
        return self._one("pause_schedule", {"name": name, "now": now}) is not None

    def resume_schedule(self, name: str, next_fire_at: int | None, now: int) -> bool:
        """Unpause (see ``resume_schedule.sql``); True if it exists."""
        params = {"name": name, "next_fire_at": next_fire_at, "now": now}
        return self._one("resume_schedule", params) is not None

    def due_schedules(self, now: int, limit: int) -> list[ScheduleRow]:
        """Due unpaused schedules, soonest first."""
        params = {"now": now, "limit": max(0, limit)}
        return [schedule_row(r) for r in self._all("due_schedules", params)]

    def next_schedule_due(self) -> int | None:
        """The earliest next fire time of the unpaused schedules."""
        row = self._one("next_schedule_due", {})
        return int(row[0]) if row is not None and row[0] is not None else None

    def acquire_beat_lease(self, holder: str, lease_ms: int, now: int) -> int | None:
        """Take or renew the lease (one statement); the term if ``holder`` holds it."""
        params = {"holder": holder, "lease_until": now + lease_ms, "now": now}
        row = self._one("acquire_beat_lease", params)
        return int(row[0]) if row is not None else None

    def release_beat_lease(self, holder: str) -> None:
        """End ``holder``'s lease at once (a no-op if another holds it)."""
        self._run("release_beat_lease", {"holder": holder})

    def beat_lease(self) -> BeatLease | None:
        """The stored lease, or None."""
        row = self._one("beat_lease", {})
        if row is None:
            return None
        return BeatLease(holder=row[0], term=int(row[1]), lease_until=int(row[2]))


__all__ = [
    "ScheduleQueries",
    "fire_params",
    "schedule_arrays",
    "schedule_params",
    "schedule_row",
    "sorted_schedules",
]
