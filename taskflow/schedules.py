"""Schedules: defining them, reading them, and turning scheduled times into workflows.

Every schedule lives in the database, whether declared in code (``@app.workflow(schedule=)``,
``app.conf.beat_schedule``) or created at run time (``app.schedules`` / ``Client.schedules``),
so any process can list, pause or backfill it. Each scheduled time becomes a workflow whose id
is derived from (schedule name, scheduled time), written in the same transaction that moves
the schedule's ``next_fire_at`` past it: a time fires at most once, however many beats run.
The beat (:mod:`taskflow.beat`) decides *when* to call :meth:`Schedules.fire_due`.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from taskflow.broker.base import Broker
from taskflow.clock import Clock, now_ms
from taskflow.cron import Timetable, schedule_expression, zone
from taskflow.errors import ConfigurationError
from taskflow.handle import WorkflowHandle
from taskflow.models import NewWorkflow, ScheduleRow, ms_to_datetime
from taskflow.queues import DEFAULT_QUEUE, validate_queue_name
from taskflow.serialization import decode, encode
from taskflow.status import Status

log = logging.getLogger("taskflow.beat")

FIRE_BATCH = 500
"""Scheduled times written per transaction when catching up (keeps each commit short)."""

MAX_BACKFILL = 100_000
"""The most times one ``backfill()`` call enqueues; a larger range is refused."""

_NAME = re.compile(r"^[A-Za-z0-9_.:@/\-]{1,200}$")
_OPTIONS = ("queue", "priority", "timeout", "expires")


class ScheduleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A schedule as stored: what fires, when it fires next, and whether it is paused."""

    name: str
    workflow: str
    cron: str
    tz: str
    context: Any
    backfill: bool
    queue: str | None
    priority: int | None
    paused: bool
    source: str
    next_fire_at: datetime | None
    last_fired_at: datetime | None
    created_at: datetime
    updated_at: datetime
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None


@dataclass(frozen=True)
class ScheduleDraft:
    """A validated schedule definition, not yet stored."""

    name: str
    workflow: str
    expression: str
    tz: str
    context: str = "null"
    inputs: str | None = None
    backfill: bool = False
    queue: str | None = None
    priority: int | None = None
    options: str = "{}"

    def row(self, source: str, now: int) -> ScheduleRow:
        """The row to store, with its first fire time after ``now``."""
        nxt = Timetable.parse(self.expression, self.tz).next_after(now)
        return ScheduleRow(
            name=self.name,
            workflow_name=self.workflow,
            expression=self.expression,
            tz=self.tz,
            context=self.context,
            inputs=self.inputs,
            backfill=self.backfill,
            queue=self.queue,
            priority=self.priority,
            options=self.options,
            source=source,
            paused=False,
            next_fire_at=nxt if nxt is not None else NEVER,
            created_at=now,
            updated_at=now,
        )


NEVER = 2**62
"""``next_fire_at`` of a schedule with no time left (cron always has one; kept for safety)."""


def check_name(name: object) -> str:
    """A schedule name: 1-200 letters, digits and ``_ . : @ / -``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"invalid schedule name {name!r}: use 1-200 letters, digits and _ . : @ / -"
        )
    return name


def draft(
    name: str,
    workflow: str,
    cron: object,
    tz: str = "UTC",
    context: Any = None,
    backfill: bool = False,
    queue: str | None = None,
    *,
    priority: int | None = None,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> ScheduleDraft:
    """Check a schedule definition and return it normalized; :class:`ConfigurationError`
    names the first bad value (cron field, time zone, option)."""
    check_name(name)
    what = f"schedule {name!r}"
    if not isinstance(workflow, str) or not workflow:
        raise ConfigurationError(f"{what}: workflow must be a workflow or its name")
    try:
        expression = schedule_expression(cron)  # type: ignore[arg-type]
    except ConfigurationError as exc:
        raise ConfigurationError(f"{what}: {exc}") from None
    if not isinstance(tz, str):
        raise ConfigurationError(f"{what}: tz must be an IANA zone name, got {tz!r}")
    try:
        zone(tz)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{what}: {exc}") from None
    if not isinstance(backfill, bool):
        raise ConfigurationError(f"{what}: backfill must be True or False, got {backfill!r}")
    extra = dict(options or {})
    unknown = sorted(set(extra) - set(_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"{what}: unsupported option(s) {', '.join(map(repr, unknown))}; "
            f"schedules take {', '.join(_OPTIONS)}"
        )
    queue = queue if queue is not None else extra.get("queue")
    priority = priority if priority is not None else extra.get("priority")
    extra.pop("queue", None)
    extra.pop("priority", None)
    if queue is not None:
        queue = validate_queue_name(queue)
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or priority < 0
    ):
        raise ConfigurationError(f"{what}: priority must be an int >= 0, got {priority!r}")
    for key in ("timeout", "expires"):
        value = extra.get(key)
        if isinstance(value, timedelta):
            extra[key] = value = value.total_seconds()
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise ConfigurationError(f"{what}: {key} must be positive seconds, got {value!r}")
    inputs = None
    if args is not None or kwargs is not None:
        inputs = encode(
            {"args": list(args or ()), "kwargs": dict(kwargs or {})}, f"the arguments of {what}"
        )
    return ScheduleDraft(
        name=name,
        workflow=workflow,
        expression=expression,
        tz=tz,
        context=encode(context, f"the context of {what}"),
        inputs=inputs,
        backfill=backfill,
        queue=queue,
        priority=priority,
        options=encode({k: v for k, v in extra.items() if v is not None}),
    )


def fire_id(name: str, at_ms: int) -> str:
    """The workflow id of schedule ``name``'s fire at ``at_ms``: the same in every process,
    which is what makes a second beat (or a repeated backfill) harmless."""
    when = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return f"schedule:{name}:{when.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def _utc_ms(when: datetime, what: str) -> int:
    if not isinstance(when, datetime):
        raise ConfigurationError(f"{what} must be a datetime, got {when!r}")
    if when.tzinfo is None:  # naive means UTC, as for eta
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def new_fires(
    row: ScheduleRow, times: Sequence[int], now: int, ids: Sequence[str] | None = None
) -> list[NewWorkflow]:
    """The workflows for ``times`` of ``row``: called ``(scheduled_at, context)`` with
    ``scheduled_at`` an aware datetime in the schedule's zone, or with the stored Celery
    ``args``/``kwargs``."""
    options = msgspec.json.decode(row.options) if row.options else {}
    timeout = options.get("timeout")
    expires = options.get("expires")
    tz = zone(row.tz)
    out: list[NewWorkflow] = []
    for i, t in enumerate(times):
        if row.inputs is not None:
            inputs = row.inputs
        else:
            at = datetime.fromtimestamp(t / 1000, tz=UTC).astimezone(tz)
            inputs = '{"args":[' + encode(at) + "," + row.context + '],"kwargs":{}}'
        out.append(
            NewWorkflow(
                id=ids[i] if ids is not None else fire_id(row.name, t),
                name=row.workflow_name,
                status=Status.ENQUEUED,
                inputs=inputs,
                queue=row.queue or DEFAULT_QUEUE,
                priority=row.priority,
                created_at=now,
                timeout_ms=int(timeout * 1000) if timeout else None,
                expires_at=max(t, now) + int(expires * 1000) if expires else None,
            )
        )
    return out


def info(row: ScheduleRow) -> ScheduleInfo:
    """The public view of a stored schedule."""
    args = kwargs = None
    if row.inputs is not None:
        data = decode(row.inputs)
        args, kwargs = list(data.get("args", [])), dict(data.get("kwargs", {}))
    created = ms_to_datetime(row.created_at)
    updated = ms_to_datetime(row.updated_at)
    assert created is not None and updated is not None
    return ScheduleInfo(
        name=row.name,
        workflow=row.workflow_name,
        cron=row.expression,
        tz=row.tz,
        context=decode(row.context),
        backfill=row.backfill,
        queue=row.queue,
        priority=row.priority,
        paused=row.paused,
        source=row.source,
        next_fire_at=None if row.next_fire_at >= NEVER else ms_to_datetime(row.next_fire_at),
        last_fired_at=ms_to_datetime(row.last_fired_at),
        created_at=created,
        updated_at=updated,
        args=args,
        kwargs=kwargs,
    )


@dataclass(frozen=True)
class CatchUp:
    """How far back a beat fires missed times: ``grace`` (seconds late that still count as on
    time) and ``window`` (how far back ``backfill=True`` schedules reach)."""

    grace: float = 10.0
    window: float = 86_400.0


class Schedules:
    """Create, read, pause, backfill and trigger schedules (``app.schedules``,
    ``Client.schedules``).

    ``check_workflow`` refuses unknown workflow names when the app is known (a Client has no
    registry: a schedule naming a workflow no worker knows fires workflows that end in ERROR
    saying so).
    """

    def __init__(
        self,
        broker: Callable[[], Broker],
        clock: Clock,
        *,
        handle: Callable[[str], WorkflowHandle[Any]],
        check_workflow: Callable[[str], None] | None = None,
        default_queue: Callable[[str], str | None] | None = None,
        code: Callable[[], list[ScheduleDraft]] | None = None,
        code_source: str = "code",
    ) -> None:
        self._broker = broker
        self._clock = clock
        self._handle = handle
        self._check_workflow = check_workflow
        self._default_queue = default_queue
        self._code = code
        self._code_source = code_source

    # -- defining --------------------------------------------------------------------------
    def _draft(self, name: str, workflow: object, cron: object, **kw: Any) -> ScheduleDraft:
        wf_name = workflow if isinstance(workflow, str) else getattr(workflow, "name", workflow)
        if not isinstance(wf_name, str):
            raise ConfigurationError(
                f"schedule {name!r}: workflow must be a workflow or its name, got {workflow!r}"
            )
        if self._check_workflow is not None:
            self._check_workflow(wf_name)
        d = draft(name, wf_name, cron, **kw)
        if d.queue is None and self._default_queue is not None:
            queue = self._default_queue(wf_name)
            if queue is not None:
                d = dataclasses.replace(d, queue=queue)
        return d

    def create(
        self,
        name: str,
        workflow: object,
        cron: object,
        tz: str = "UTC",
        context: Any = None,
        backfill: bool = False,
        queue: str | None = None,
    ) -> ScheduleInfo:
        """Store a new schedule: ``workflow`` (a workflow or its name) runs at each time of
        ``cron`` (5 fields, 6 with seconds first, a macro such as ``@daily``, a
        :class:`~taskflow.crontab`, or an interval in seconds / timedelta) in time zone
        ``tz``, receiving ``(scheduled_at, context)``. It first fires at the next time after
        now. Raises :class:`ConfigurationError` naming a bad field, zone or a name already
        taken (``apply`` replaces), and :class:`UnknownWorkflowError` for a workflow the app
        does not know."""
        d = self._draft(
            name, workflow, cron, tz=tz, context=context, backfill=backfill, queue=queue
        )
        now = now_ms(self._clock)
        if not self._broker().create_schedule(d.row("api", now)):
            raise ConfigurationError(
                f"a schedule named {name!r} already exists; delete it first or use apply()"
            )
        return self._get(name)

    def apply(self, schedules: Iterable[Mapping[str, Any]]) -> list[ScheduleInfo]:
        """Create or replace the given schedules in one transaction (all or none). Each is a
        mapping of :meth:`create`'s arguments (``name``, ``workflow``, ``cron``, ``tz``,
        ``context``, ``backfill``, ``queue``). A replaced schedule keeps its pause state and
        its place in time when ``cron`` and ``tz`` are unchanged; else it restarts from now."""
        drafts: list[ScheduleDraft] = []
        for spec in schedules:
            if not isinstance(spec, Mapping):
                raise ConfigurationError(
                    f"apply() takes mappings of create()'s arguments: {spec!r}"
                )
            params = dict(spec)
            try:
                name = params.pop("name")
                workflow = params.pop("workflow")
                cron = params.pop("cron")
            except KeyError as exc:
                raise ConfigurationError(
                    f"apply(): schedule {spec!r} lacks {exc.args[0]!r}"
                ) from None
            drafts.append(self._draft(name, workflow, cron, **params))
        names = [d.name for d in drafts]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"apply(): a schedule name appears twice in {names}")
        now = now_ms(self._clock)
        self._broker().put_schedules([d.row("api", now) for d in drafts], now)
        return [self._get(n) for n in names]

    def sync_code(self) -> int:
        """Write the app's code-declared schedules to the database (new ones start from now;
        unchanged ones keep their place in time and pause state) and delete this app's code
        schedules that are no longer declared. Returns how many are declared."""
        if self._code is None:
            return 0
        drafts = self._code()
        now = now_ms(self._clock)
        rows = [d.row(self._code_source, now) for d in drafts]
        self._broker().put_schedules(rows, now, replace_source=self._code_source)
        return len(rows)

    # -- reading ---------------------------------------------------------------------------
    def get(self, name: str) -> ScheduleInfo | None:
        """The schedule named ``name``, or None."""
        row = self._broker().get_schedule(check_name(name))
        return None if row is None else info(row)

    def _get(self, name: str) -> ScheduleInfo:
        found = self.get(name)
        if found is None:
            raise ConfigurationError(f"no schedule named {name!r}")
        return found

    def _row(self, name: str) -> ScheduleRow:
        row = self._broker().get_schedule(check_name(name))
        if row is None:
            raise ConfigurationError(f"no schedule named {name!r}")
        return row

    def list(self) -> builtins.list[ScheduleInfo]:
        """Every schedule, by name, code-declared ones included."""
        return [info(r) for r in self._broker().list_schedules()]

    # -- changing --------------------------------------------------------------------------
    def pause(self, name: str) -> None:
        """Stop firing ``name`` until :meth:`resume`; raises for an unknown name."""
        if not self._broker().pause_schedule(check_name(name), now_ms(self._clock)):
            raise ConfigurationError(f"no schedule named {name!r}")

    def resume(self, name: str) -> None:
        """Fire ``name`` again from its next time after now. Times that passed while it was
        paused are not fired; ask for them with :meth:`backfill`."""
        row = self._row(name)
        now = now_ms(self._clock)
        nxt = Timetable.parse(row.expression, row.tz).next_after(now)
        self._broker().resume_schedule(name, nxt if nxt is not None else NEVER, now)

    def delete(self, name: str) -> None:
        """Remove ``name`` (workflows it already fired are kept); raises for an unknown name.
        A code-declared schedule comes back when its app's beat starts again."""
        if not self._broker().delete_schedule(check_name(name)):
            raise ConfigurationError(f"no schedule named {name!r}")

    # -- firing on demand ------------------------------------------------------------------
    def backfill(self, name: str, start: datetime, end: datetime) -> builtins.list[str]:
        """Enqueue every time of ``name`` in ``[start, end]`` that has not fired yet (naive
        datetimes are UTC) and return the new workflows' ids, oldest first. Times already
        fired, by the beat or an earlier backfill, keep their workflow: running it twice
        enqueues nothing new. Works on paused schedules too."""
        row = self._row(name)
        lo = _utc_ms(start, "backfill start")
        hi = _utc_ms(end, "backfill end")
        if lo > hi:
            raise ConfigurationError(f"backfill {name!r}: start {start} is after end {end}")
        times = Timetable.parse(row.expression, row.tz).between(lo, hi, MAX_BACKFILL + 1)
        if len(times) > MAX_BACKFILL:
            raise ConfigurationError(
                f"backfill {name!r}: the range holds more than {MAX_BACKFILL} times; split it"
            )
        broker = self._broker()
        now = now_ms(self._clock)
        created: builtins.list[str] = []
        for i in range(0, len(times), FIRE_BATCH):
            news = new_fires(row, times[i : i + FIRE_BATCH], now)
            created += [r.id for r in broker.enqueue(news, now) if r.created]
        return created

    def trigger(self, name: str) -> WorkflowHandle[Any]:
        """Fire ``name`` now, once, with its own id (``schedule:<name>:trigger:...``), paused
        or not; its scheduled time is now."""
        row = self._row(name)
        now = now_ms(self._clock)
        stamp = datetime.fromtimestamp(now / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        wid = f"schedule:{name}:trigger:{stamp}:{uuid.uuid4().hex[:8]}"
        self._broker().enqueue(new_fires(row, [now], now, ids=[wid]), now)
        return self._handle(wid)

    # -- firing on time (the beat) ---------------------------------------------------------
    def fire_due(self, lease: tuple[str, int] | None, catch_up: CatchUp) -> int:
        """Fire every unpaused schedule whose time has come, following its catch-up policy;
        return how many workflows were enqueued. Called by the leading beat with its
        ``(holder, term)``: a beat that lost the lease fires nothing."""
        broker = self._broker()
        now = now_ms(self._clock)
        fired = 0
        for row in broker.due_schedules(now, 100):
            try:
                fired += self._fire(broker, row, lease, catch_up, now)
            except ConfigurationError as exc:
                # A row this version cannot read (edited by hand, or written by a newer
                # version): pause it rather than retry it every tick.
                log.error("schedule %r cannot fire and is paused: %s", row.name, exc)
                broker.pause_schedule(row.name, now)
        return fired

    def _fire(
        self,
        broker: Broker,
        row: ScheduleRow,
        lease: tuple[str, int] | None,
        catch_up: CatchUp,
        now: int,
    ) -> int:
        table = Timetable.parse(row.expression, row.tz)
        reach = catch_up.window if row.backfill else catch_up.grace
        start = max(row.next_fire_at, now - int(reach * 1000))
        if start > row.next_fire_at:
            log.warning(
                "schedule %r: skipped times from %s to %s (%s)",
                row.name,
                ms_to_datetime(row.next_fire_at),
                ms_to_datetime(start),
                "beyond the backfill window" if row.backfill else "backfill is off",
            )
        expected = row.next_fire_at
        fired = 0
        while True:
            times = table.between(start, now, FIRE_BATCH)
            # A full batch may leave due times after it; otherwise everything up to now fired.
            nxt = table.next_after(times[-1] if len(times) == FIRE_BATCH else now)
            new_next = nxt if nxt is not None else NEVER
            news = new_fires(row, times, now)
            results = broker.fire_schedule(
                row.name, expected, new_next, times[-1] if times else None, news, lease, now
            )
            if results is None:
                return fired  # fired by someone else, changed, paused, or leadership lost
            fired += sum(1 for r in results if r.created)
            if len(times) < FIRE_BATCH:
                return fired
            expected, start = new_next, new_next


_BEAT_KEYS = frozenset({"task", "schedule", "args", "kwargs", "options", "tz", "backfill"})


def beat_schedule_drafts(entries: Mapping[str, Any], tz: str) -> list[ScheduleDraft]:
    """Celery's ``beat_schedule`` as schedule drafts: each entry's ``task`` runs with its
    ``args``/``kwargs`` (not ``(scheduled_at, context)``, as in Celery) at the times of its
    ``schedule`` in ``tz`` (the app's ``timezone`` unless the entry has ``tz``)."""
    if not isinstance(entries, Mapping):
        raise ConfigurationError(f"beat_schedule must be a dict of entries, got {entries!r}")
    drafts: list[ScheduleDraft] = []
    for name, entry in entries.items():
        what = f"beat_schedule entry {name!r}"
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"{what} must be a dict, got {entry!r}")
        unknown = sorted(set(entry) - _BEAT_KEYS)
        if unknown:
            raise ConfigurationError(
                f"{what}: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(_BEAT_KEYS))}"
            )
        for key in ("task", "schedule"):
            if key not in entry:
                raise ConfigurationError(f"{what} lacks {key!r}")
        args = entry.get("args", ())
        kwargs = entry.get("kwargs", {})
        if not isinstance(args, list | tuple) or not isinstance(kwargs, Mapping):
            raise ConfigurationError(f"{what}: args must be a tuple or list, kwargs a dict")
        options = entry.get("options") or {}
        if not isinstance(options, Mapping):
            raise ConfigurationError(f"{what}: options must be a dict, got {options!r}")
        drafts.append(
            draft(
                check_name(name),
                entry["task"],
                entry["schedule"],
                tz=entry.get("tz", tz),
                backfill=entry.get("backfill", False),
                args=args,
                kwargs=kwargs,
                options=options,
            )
        )
    return drafts


__all__ = [
    "MAX_BACKFILL",
    "CatchUp",
    "ScheduleDraft",
    "ScheduleInfo",
    "Schedules",
    "beat_schedule_drafts",
    "check_name",
    "draft",
    "fire_id",
    "info",
    "new_fires",
]
