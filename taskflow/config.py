"""``app.conf``: the typed, documented configuration of a taskflow app.

Every field has a Celery-style lowercase name. ``broker_url`` is an alias of
``database_url``. Values come from the ``Taskflow(...)`` arguments, then
``config_from_object``/``update``, then the environment (``TASKFLOW_DATABASE_URL``,
``TASKFLOW_APP_VERSION``), then the defaults below.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from taskflow.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///taskflow.sqlite3"
"""The embedded default: a SQLite file in the working directory."""


@dataclasses.dataclass
class Config:
    """Settings of one app. Change them before the app first touches its database."""

    database_url: str | None = None
    """System database URL (``postgresql://...`` or ``sqlite:///path``). None: use
    ``$TASKFLOW_DATABASE_URL``, else :data:`DEFAULT_DATABASE_URL`."""

    app_version: str | None = None
    """Version recorded on every workflow. None: ``$TASKFLOW_APP_VERSION``, else a hash of the
    registered workflows' source code."""

    database_schema: str = "taskflow"
    """Postgres schema holding taskflow's tables (ignored on SQLite)."""

    database_pool_size: int = 10
    """Most connections one process keeps open to Postgres."""

    database_connect_timeout: float = 10.0
    """Seconds to wait for a database connection before failing with a clear error."""

    sqlite_synchronous: str = "FULL"
    """SQLite ``PRAGMA synchronous``: FULL survives power loss; NORMAL is faster and still
    survives a process crash."""

    sqlite_busy_timeout: float = 30.0
    """Seconds a SQLite writer waits for a lock held by another process."""

    executor_id: str | None = None
    """Identity recorded on the workflows this process runs. None: ``host:pid:start``, which
    lets ``app.recover()`` on the same host tell a dead predecessor from a live one."""

    result_poll_interval: float = 0.05
    """Seconds between checks while ``handle.get()`` waits (it starts faster and backs off to
    this)."""

    task_always_eager: bool = False
    """Celery habit for tests: ``.delay()`` runs the workflow inline and returns a finished
    handle."""

    worker_concurrency: int | None = None
    """Child processes of a prefork worker (threads of a ``threads`` pool). None: the number
    of CPUs. ``taskflow worker -c`` overrides it."""

    worker_pool: str = "prefork"
    """``prefork``, ``threads`` or ``solo``. ``taskflow worker -P`` overrides it."""

    worker_threads: int = 8
    """Workflows one prefork child runs at once, each in its own thread. Durable workflows
    mostly wait on the database, so a few per process keep throughput up without one process
    per workflow; set 1 for CPU-bound tasks (Celery's one task per process)."""

    worker_poll_interval: float = 1.0
    """Seconds between checks for new work when no notification arrives (a lost NOTIFY, or
    PgBouncer in transaction mode, only slows pickup to this)."""

    workflow_park_after: float = 5.0
    """Seconds a workflow run by a worker may wait (``sleep``, ``recv``, ``get_event``, a
    child's result) while holding its worker slot. A longer wait parks it: the slot and its
    queue's concurrency slot are given back, and the workflow is claimed again (replaying
    from its checkpoints) when its wake-up time comes or what it waits for arrives. A sleep
    longer than this parks at once. 0 parks every wait at once."""

    worker_heartbeat_interval: float = 2.0
    """Seconds between heartbeats of a worker (and of a process running workflows directly)."""

    worker_heartbeat_timeout: float = 10.0
    """A worker silent for this long is dead: live workers give its running workflows back to
    their queues, to resume from their last step."""

    worker_shutdown_timeout: float = 30.0
    """Warm shutdown: seconds running workflows get to finish before they are handed back."""

    worker_max_tasks_per_child: int | None = None
    """Replace a prefork child after it ran this many workflows."""

    worker_max_memory_per_child: int | None = None
    """Replace a prefork child once its resident memory exceeds this many KiB (checked after
    each workflow)."""

    result_expires: timedelta | float | None = timedelta(days=7)
    """Retention: workers delete finished workflows (with their steps, events, streams and
    messages) that finished longer ago than this, a timedelta or a number of seconds as in
    Celery. None or 0 keeps everything. A pruned workflow's id may be used again by a new
    start. See docs/operations.md, "Retention"."""

    result_expires_batch: int = 1000
    """Workflows deleted per retention transaction: small batches keep every transaction
    short, so pruning never holds locks a running worker waits for."""

    result_expires_interval: float = 60.0
    """Seconds between a worker's retention passes (each worker adds up to 10% of jitter;
    several workers pruning at once skip each other's rows)."""

    timezone: str = "UTC"
    """Default time zone for schedules."""

    beat_schedule: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Celery-style static schedules: ``{name: {"task": ..., "schedule": crontab(...) | cron
    string | seconds | timedelta, "args": (), "kwargs": {}, "options": {"queue": ...}}}``,
    written to the database by the beat (see docs/schedules.md)."""

    beat_lease: float = 5.0
    """Seconds a beat's leadership lasts without renewal: a dead leader is replaced within
    about this long."""

    beat_max_interval: float = 1.0
    """Longest a beat waits between rounds (renewing its lease, or checking for a free one)."""

    beat_misfire_grace_time: float = 10.0
    """Seconds late a scheduled time may fire and still count as on time. Times missed by
    more (the beat was down) are skipped by ``backfill=False`` schedules."""

    beat_backfill_window: timedelta = timedelta(days=1)
    """How far back a ``backfill=True`` schedule fires the times it missed; older ones are
    skipped with a log line."""

    @property
    def broker_url(self) -> str | None:
        """Alias of :attr:`database_url`, for Celery code."""
        return self.database_url

    @broker_url.setter
    def broker_url(self, value: str | None) -> None:
        self.database_url = value

    def resolved_database_url(self) -> str:
        """The URL in force: explicit setting, else the environment, else the default."""
        return self.database_url or os.environ.get("TASKFLOW_DATABASE_URL") or DEFAULT_DATABASE_URL

    def result_expires_ms(self) -> int | None:
        """:attr:`result_expires` in whole milliseconds; None when retention is off (None or
        0). Anything but a timedelta or a number of seconds, at least 0, raises
        :class:`ConfigurationError` naming the value."""
        value = self.result_expires
        if value is None:
            return None
        if isinstance(value, timedelta):
            seconds = value.total_seconds()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            raise ConfigurationError(
                f"result_expires must be a timedelta, a number of seconds or None, got {value!r}"
            )
        if not math.isfinite(seconds) or seconds < 0:
            raise ConfigurationError(
                f"result_expires must not be negative (0 or None turns retention off), got "
                f"{value!r}"
            )
        return max(1, int(seconds * 1000)) if seconds > 0 else None

    def update(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Set several options at once; an unknown name raises :class:`ConfigurationError`."""
        merged = {**(values or {}), **kwargs}
        for key, value in merged.items():
            name = key.lower()
            if name == "broker_url":
                name = "database_url"
            if name not in _FIELDS:
                raise ConfigurationError(
                    f"unknown setting {key!r}; known settings: {', '.join(sorted(_FIELDS))}"
                )
            setattr(self, name, value)

    def from_object(self, obj: object | str, namespace: str | None = None) -> None:
        """Celery's ``config_from_object``: read settings from a module, a module path
        (``"proj.settings"``), a class or any object. With ``namespace="TASKFLOW"`` it reads
        ``TASKFLOW_DATABASE_URL`` style upper-case names instead. Attributes that are not
        settings are ignored, as Celery does."""
        if isinstance(obj, str):
            obj = _import_object(obj)
        values: dict[str, Any] = {}
        for name in (*_FIELDS, "broker_url"):
            attr = f"{namespace.upper()}_{name.upper()}" if namespace else name
            if isinstance(obj, Mapping):
                if attr in obj:
                    values[name] = obj[attr]
            elif hasattr(obj, attr):
                values[name] = getattr(obj, attr)
        self.update(values)


_FIELDS = frozenset(f.name for f in dataclasses.fields(Config))


def _import_object(path: str) -> object:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import configuration module {module_name!r}: {exc}"
        ) from exc
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}") from exc


__all__ = ["DEFAULT_DATABASE_URL", "Config"]
