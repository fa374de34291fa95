"""Schedules and the beat in one process, on both dialects, with an injected clock: what
fires when (downtime with backfill on and off, the backfill window, pauses, DST days),
leadership between beats (a stale leader fires nothing), ``backfill``/``trigger``, code
schedules written by the leading beat, and refusals of bad input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from taskflow import (
    Client,
    ConfigurationError,
    Status,
    Taskflow,
    UnknownWorkflowError,
    crontab,
)
from taskflow.beat import Beat
from taskflow.clock import now_ms
from taskflow.execution import WorkerMode
from taskflow.schedules import fire_id

from .helpers import FakeClock, workflow_ids

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ms(when: datetime) -> int:
    """Epoch milliseconds of ``when``."""
    return int(when.timestamp() * 1000)


def sched_app(
    make_app: Callable[..., Taskflow], start: datetime = START, **settings: Any
) -> tuple[Taskflow, FakeClock]:
    """An app on a fake clock with ``job(scheduled_at, context)`` and ``plain(x)``."""
    clock = FakeClock(start=start.timestamp())
    app = make_app(clock=clock, **settings)

    @app.workflow(name="job")
    def job(scheduled_at: datetime, context: Any) -> str:
        return f"{scheduled_at.isoformat()}|{context}"

    @app.workflow(name="plain")
    def plain(x: int) -> int:
        return x * 2

    return app, clock


def fired(app: Taskflow, name: str) -> list[str]:
    """Ids of the workflows schedule ``name`` fired, sorted."""
    prefix = f"schedule:{name}:"
    return sorted(i for i in _ids(app) if i.startswith(prefix))


def _ids(app: Taskflow) -> list[str]:
    return workflow_ids(app.conf.resolved_database_url())


def term_of(beat: Beat) -> int | None:
    """The lease term a beat holds (read through a call: it changes under mypy's feet)."""
    return beat.term


def run_due(app: Taskflow) -> list[str]:
    """Claim what is enqueued and run it here, as a worker would."""
    now = now_ms(app.clock)
    app.broker.tick(now)
    rows = app.broker.claim(app.executor_id, ["default"], app.app_version, 10_000, now)
    mode = WorkerMode(executor_id=app.executor_id, defer_finish=False)
    for row in rows:
        app.run_claimed(row, mode)
    return [r.id for r in rows]


def times_between(start: datetime, end: datetime, step: timedelta) -> list[str]:
    """The fire ids of a schedule ``s`` firing every ``step`` from ``start`` to ``end``."""
    out = []
    t = start
    while t <= end:
        out.append(fire_id("s", ms(t)))
        t += step
    return out


# -- defining ------------------------------------------------------------------------------
def test_create_get_list_pause_resume_delete(make_app: Callable[..., Taskflow]) -> None:
    app, clock = sched_app(make_app)
    made = app.schedules.create("s", "job", "*/5 * * * *", tz="Europe/Paris", context={"a": 1})
    assert made.workflow == "job" and made.cron == "*/5 * * * *" and made.tz == "Europe/Paris"
    assert made.context == {"a": 1} and not made.paused and made.source == "api"
    assert made.next_fire_at == utc(2026, 1, 5, 12, 5)
    assert app.schedules.get("s") == made
    assert app.schedules.get("missing") is None
    app.schedules.create("t", app.get_workflow("plain"), 30)  # a workflow object, an interval
    assert [s.name for s in app.schedules.list()] == ["s", "t"]
    assert app.schedules.get("t").cron == "@every 30"  # type: ignore[union-attr]
    app.schedules.pause("s")
    assert app.schedules.get("s").paused  # type: ignore[union-attr]
    clock.advance(3600)
    app.schedules.resume("s")
    resumed = app.schedules.get("s")
    assert resumed is not None and not resumed.paused
    assert resumed.next_fire_at == utc(2026, 1, 5, 13, 5)  # after now, not during the pause
    app.schedules.delete("s")
    assert app.schedules.get("s") is None
    for verb in ("pause", "resume", "delete", "trigger"):
        with pytest.raises(ConfigurationError, match="no schedule named 'nope'"):
            getattr(app.schedules, verb)("nope")


def test_bad_definitions_are_refused_naming_the_field(make_app: Callable[..., Taskflow]) -> None:
    app, _ = sched_app(make_app)
    with pytest.raises(ConfigurationError, match="minute"):
        app.schedules.create("s", "job", "61 0 * * *")
    with pytest.raises(ConfigurationError, match="Mars/Base"):
        app.schedules.create("s", "job", "0 3 * * *", tz="Mars/Base")
    with pytest.raises(UnknownWorkflowError, match=r"nope\.missing"):
        app.schedules.create("s", "nope.missing", "0 3 * * *")
    with pytest.raises(ConfigurationError, match="invalid schedule name"):
        app.schedules.create("bad name!", "job", "0 3 * * *")
    with pytest.raises(ConfigurationError, match="interval"):
        app.schedules.create("s", "job", -5)
    assert app.schedules.list() == []
    app.schedules.create("s", "job", "0 3 * * *")
    with pytest.raises(ConfigurationError, match="already exists"):
        app.schedules.create("s", "job", "0 4 * * *")
    # apply is all or nothing: one bad entry writes nothing.
    with pytest.raises(ConfigurationError, match="hour"):
        app.schedules.apply(
            [
                {"name": "a", "workflow": "job", "cron": "0 1 * * *"},
                {"name": "b", "workflow": "job", "cron": "0 25 * * *"},
            ]
        )
    assert [s.name for s in app.schedules.list()] == ["s"]

    with pytest.raises(ConfigurationError, match=r"must accept \(scheduled_at, context\)"):

        @app.workflow(name="wrong", schedule="0 3 * * *")
        def wrong() -> None: ...

    with pytest.raises(ConfigurationError, match="second"):

        @app.workflow(name="wrong2", schedule="61 * * * * *")
        def wrong2(at: datetime, ctx: Any) -> None: ...


def test_apply_creates_and_replaces_keeping_place_in_time(
    make_app: Callable[..., Taskflow],
) -> None:
    app, clock = sched_app(make_app)
    app.schedules.apply([{"name": "a", "workflow": "job", "cron": "0 * * * *"}])
    app.schedules.pause("a")
    clock.advance(7200)
    app.schedules.apply(
        [
            {"name": "a", "workflow": "job", "cron": "0 * * * *", "context": "new"},
            {"name": "b", "workflow": "job", "cron": "30 * * * *"},
        ]
    )
    a, b = app.schedules.list()
    assert a.context == "new" and a.paused and a.next_fire_at == utc(2026, 1, 5, 13)
    assert b.next_fire_at == utc(2026, 1, 5, 14, 30)
    app.schedules.apply([{"name": "a", "workflow": "job", "cron": "15 * * * *"}])
    a = app.schedules.get("a")  # type: ignore[assignment]
    assert a.next_fire_at == utc(2026, 1, 5, 14, 15)  # a new cron restarts from now


# -- firing --------------------------------------------------------------------------------
def test_the_beat_fires_each_time_once_with_derived_ids(
    make_app: Callable[..., Taskflow],
) -> None:
    app, clock = sched_app(make_app)
    app.schedules.create("s", "job", "* * * * *", tz="Europe/Paris", context=[1, 2])
    beat = Beat(app)
    beat.tick()
    assert fired(app, "s") == []
    clock.advance(60)
    wait = beat.tick()
    assert beat.leading and 0 <= wait <= app.conf.beat_max_interval
    assert fired(app, "s") == [fire_id("s", ms(utc(2026, 1, 5, 12, 1)))]
    assert fired(app, "s") == ["schedule:s:2026-01-05T12:01:00Z"]
    beat.tick()  # nothing new is due
    assert len(fired(app, "s")) == 1
    run_due(app)
    handle = app.retrieve("schedule:s:2026-01-05T12:01:00Z")
    assert handle.get(timeout=5) == "2026-01-05T13:01:00+01:00|[1, 2]"
    info = app.schedules.get("s")
    assert info is not None and info.last_fired_at == utc(2026, 1, 5, 12, 1)
    assert info.next_fire_at == utc(2026, 1, 5, 12, 2)


def test_a_six_field_per_second_schedule_fires_every_second(
    make_app: Callable[..., Taskflow],
) -> None:
    # Straight through the spring-forward jump in Paris (01:00:00 UTC on 2026-03-29).
    app, clock = sched_app(make_app, start=utc(2026, 3, 29, 0, 59, 50))
    app.schedules.create("s", "job", "* * * * * *", tz="Europe/Paris")
    beat = Beat(app)
    for _ in range(20):
        clock.advance(1)
        beat.tick()
    assert fired(app, "s") == times_between(
        utc(2026, 3, 29, 0, 59, 51), utc(2026, 3, 29, 1, 0, 10), timedelta(seconds=1)
    )


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [
        ("Europe/Paris", utc(2026, 3, 29, 1, 30), utc(2026, 10, 25, 0, 30)),
        ("America/New_York", utc(2026, 3, 8, 7, 30), utc(2026, 11, 1, 7, 30)),
    ],
)
def test_a_daily_0230_fires_once_on_both_dst_days(
    make_app: Callable[..., Taskflow], zone: str, spring: datetime, fall: datetime
) -> None:
    # 02:30 does not exist on either spring day (it fires at 03:30 new time, the gap later);
    # in Paris it happens twice on the fall day (fires at the first); New York repeats 01:xx
    # instead, so its 02:30 is plain standard time there.
    for name, day in (("spring", spring), ("fall", fall)):
        app, clock = sched_app(make_app, start=day - timedelta(days=1, hours=6))
        app.schedules.create(name, "job", "0 30 2 * * *", tz=zone)
        beat = Beat(app)
        for _ in range(48 * 4):
            clock.advance(900)
            beat.tick()
        ids = fired(app, name)
        assert len(ids) == 2, ids  # the day before, and the transition day: once each
        assert fire_id(name, ms(day)) in ids
        app.close()


def test_downtime_with_backfill_on_and_off(
    make_app: Callable[..., Taskflow], caplog: pytest.LogCaptureFixture
) -> None:
    app, clock = sched_app(make_app)
    app.schedules.create("on", "job", "* * * * *", backfill=True)
    app.schedules.create("off", "job", "* * * * *", backfill=False)
    beat = Beat(app)
    clock.advance(60)
    beat.tick()
    assert len(fired(app, "on")) == len(fired(app, "off")) == 1
    clock.advance(3600)  # the beat was away for an hour
    with caplog.at_level(logging.WARNING, logger="taskflow.beat"):
        beat.tick()
    assert fired(app, "on") == sorted(
        fire_id("on", ms(START + timedelta(minutes=m))) for m in range(1, 62)
    )
    # Off: the missed hour is skipped; the time that is due now (within the grace) fires.
    assert fired(app, "off") == sorted(
        fire_id("off", ms(START + timedelta(minutes=m))) for m in (1, 61)
    )
    assert "schedule 'off': skipped times" in caplog.text
    assert "schedule 'on': skipped" not in caplog.text
    clock.advance(60)
    beat.tick()
    assert len(fired(app, "off")) == 3 and len(fired(app, "on")) == 62


def test_backfill_reaches_back_one_window_and_says_what_it_skipped(
    make_app: Callable[..., Taskflow], caplog: pytest.LogCaptureFixture
) -> None:
    app, clock = sched_app(make_app, beat_backfill_window=timedelta(hours=2))
    app.schedules.create("s", "job", "*/10 * * * *", backfill=True)
    clock.advance(5 * 3600)  # down five hours, from before the first time
    with caplog.at_level(logging.WARNING, logger="taskflow.beat"):
        Beat(app).tick()
    assert fired(app, "s") == times_between(
        utc(2026, 1, 5, 15), utc(2026, 1, 5, 17), timedelta(minutes=10)
    )
    assert "schedule 's': skipped times from 2026-01-05 12:10:00+00:00 to" in caplog.text
    assert "beyond the backfill window" in caplog.text


def test_paused_schedules_do_not_fire_nor_backfill_their_pause(
    make_app: Callable[..., Taskflow],
) -> None:
    app, clock = sched_app(make_app)
    app.schedules.create("s", "job", "* * * * *", backfill=True)
    beat = Beat(app)
    app.schedules.pause("s")
    clock.advance(600)
    beat.tick()
    assert fired(app, "s") == []
    app.schedules.resume("s")
    beat.tick()
    assert fired(app, "s") == []
    clock.advance(60)
    beat.tick()
    assert fired(app, "s") == [fire_id("s", ms(utc(2026, 1, 5, 12, 11)))]


def test_backfill_is_idempotent_and_trigger_fires_now(make_app: Callable[..., Taskflow]) -> None:
    app, clock = sched_app(make_app)
    app.schedules.create("s", "job", "0 * * * *", context="ctx")
    clock.advance(2 * 3600)
    Beat(app).tick()  # fires 14:00 only (backfill off)
    assert fired(app, "s") == [fire_id("s", ms(utc(2026, 1, 5, 14)))]
    ids = app.schedules.backfill("s", datetime(2026, 1, 5, 9), utc(2026, 1, 5, 14))
    assert ids == [fire_id("s", ms(utc(2026, 1, 5, h))) for h in range(9, 14)]
    assert app.schedules.backfill("s", utc(2026, 1, 5, 9), utc(2026, 1, 5, 14)) == []
    assert len(fired(app, "s")) == 6
    with pytest.raises(ConfigurationError, match="after end"):
        app.schedules.backfill("s", utc(2026, 1, 5, 14), utc(2026, 1, 5, 9))
    first = app.schedules.trigger("s")
    second = app.schedules.trigger("s")
    assert first.id != second.id and first.id.startswith("schedule:s:trigger:")
    run_due(app)
    assert second.get(timeout=5) == "2026-01-05T14:00:00+00:00|ctx"
    assert app.retrieve(ids[0]).get(timeout=5) == "2026-01-05T09:00:00+00:00|ctx"


# -- leadership ----------------------------------------------------------------------------
def test_one_leader_and_a_stale_leader_fires_nothing(make_app: Callable[..., Taskflow]) -> None:
    app, clock = sched_app(make_app)
    app.schedules.create("s", "job", "* * * * * *")
    a, b = Beat(app, "a"), Beat(app, "b")
    for _ in range(5):
        clock.advance(1)
        a.tick()
        b.tick()
    assert term_of(a) is not None and term_of(b) is None
    assert len(fired(app, "s")) == 5
    term = a.term
    assert term is not None
    stale = (a.holder, term)
    clock.advance(app.conf.beat_lease + 1)  # a froze: its lease runs out
    b.tick()
    assert term_of(b) is not None and term_of(b) != term
    count = len(fired(app, "s"))
    # a wakes up mid-round, still believing it leads: its fencing term is stale.
    assert app.schedules.fire_due(stale, a.catch_up) == 0
    assert len(fired(app, "s")) == count
    a.tick()
    assert term_of(a) is None  # it stands by now
    clock.advance(1)
    a.tick()
    b.tick()
    assert len(fired(app, "s")) == count + 1
    assert len(set(fired(app, "s"))) == len(fired(app, "s"))


def test_code_schedules_are_written_by_the_leader(make_app: Callable[..., Taskflow]) -> None:
    app, clock = sched_app(make_app, timezone="Europe/Paris")

    @app.workflow(name="nightly", schedule=crontab(hour=3, minute=0), backfill=True)
    def nightly(scheduled_at: datetime, context: Any) -> str:
        return scheduled_at.isoformat()

    app.conf.beat_schedule = {
        "every-30s": {"task": "plain", "schedule": 30.0, "args": (21,)},
        "cron-entry": {"task": "plain", "schedule": "0 4 * * *", "kwargs": {"x": 1}},
    }
    app.schedules.create("api-made", "job", "0 5 * * *")
    Beat(app).tick()
    by_name = {s.name: s for s in app.schedules.list()}
    assert set(by_name) == {"nightly", "every-30s", "cron-entry", "api-made"}
    assert by_name["nightly"].tz == "Europe/Paris" and by_name["nightly"].backfill
    assert by_name["nightly"].source == f"code:{app.name}"
    assert by_name["every-30s"].cron == "@every 30" and by_name["every-30s"].args == [21]
    clock.advance(30)
    beat = Beat(app)
    clock.advance(app.conf.beat_lease + 1)
    beat.tick()  # a new leader syncs again: unchanged schedules keep their place in time
    assert app.schedules.get("nightly").next_fire_at == by_name["nightly"].next_fire_at  # type: ignore[union-attr]
    run_due(app)
    every = fired(app, "every-30s")
    assert every and app.retrieve(every[0]).get(timeout=5) == 42
    # Dropped from the code: gone at the next sync; schedules made at run time stay.
    app.conf.beat_schedule = {}
    app.schedules.sync_code()
    assert {s.name for s in app.schedules.list()} == {"nightly", "api-made"}
    app.conf.beat_schedule = {"x": {"task": "nope.missing", "schedule": 60}}
    with pytest.raises(UnknownWorkflowError, match=r"nope\.missing"):
        app.declared_schedules()
    app.conf.beat_schedule = {"x": {"task": "plain", "schedule": 60, "every": 1}}
    with pytest.raises(ConfigurationError, match="unknown key"):
        app.declared_schedules()


def test_a_client_manages_schedules_by_name_and_unknown_workflows_end_in_error(
    make_app: Callable[..., Taskflow],
) -> None:
    app, clock = sched_app(make_app)
    with Client(app.conf.resolved_database_url(), clock=clock) as client:
        client.schedules.create("by-name", "job", "0 * * * *", context="c")
        client.schedules.create("ghost", "nope.missing", "* * * * *")  # no registry to check
        assert [s.name for s in client.schedules.list()] == ["by-name", "ghost"]
        assert app.schedules.get("by-name") == client.schedules.get("by-name")
        handle = client.schedules.trigger("by-name")
        ids = client.schedules.backfill("by-name", utc(2026, 1, 5, 10), utc(2026, 1, 5, 11))
        assert ids == [fire_id("by-name", ms(utc(2026, 1, 5, h))) for h in (10, 11)]
        clock.advance(60)
        Beat(app).tick()
        (ghost,) = fired(app, "ghost")
        run_due(app)
        assert handle.get(timeout=5) == "2026-01-05T12:00:00+00:00|c"
        failed = client.retrieve(ghost)
        assert failed.status == Status.ERROR
        with pytest.raises(UnknownWorkflowError, match=r"nope\.missing"):
            failed.get(timeout=5)
