"""``taskflow beat`` and ``taskflow schedules``: run the beat, and manage schedules by name."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from taskflow.broker import create_broker
from taskflow.cli.common import (
    app_option,
    database_conf,
    database_options,
    emit,
    json_option,
    required_app,
    resolve_app,
    taskflow_errors,
)
from taskflow.clock import SystemClock
from taskflow.handle import WorkflowHandle
from taskflow.schedules import ScheduleInfo, Schedules

COLUMNS = ("name", "workflow", "cron", "tz", "next_fire_at", "last_fired_at", "state", "queue")


@click.command()
@app_option
@click.option("-l", "--loglevel", default="INFO", help="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
@click.option("-n", "--name", default=None, help="This beat's name in logs and the lease.")
@click.pass_context
def beat(ctx: click.Context, app_spec: str | None, loglevel: str, name: str | None) -> None:
    """Run a beat: fire the schedules in the database on time.

    Run as many as you like for availability: one leads (a lease in the database), the others
    stand by and take over within a few seconds if it dies. Schedules declared in the app's
    code are written to the database when this beat starts leading.
    """
    from taskflow.beat import run_beat  # noqa: PLC0415 - keep other commands light

    app = required_app(ctx, app_spec, loglevel)
    with taskflow_errors():
        app.declared_schedules()  # refuse a bad beat_schedule before taking the lease
        code = run_beat(app, name)
    sys.exit(code)


@contextmanager
def _schedules(
    ctx: click.Context, app_spec: str | None, database_url: str | None
) -> Iterator[Schedules]:
    """The app's schedules (workflow names checked against it), or bare ones on a URL."""
    app = resolve_app(ctx, app_spec)
    if app is not None and database_url is None:
        with taskflow_errors():
            try:
                yield app.schedules
            finally:
                app.close()
        return
    conf = database_conf(ctx, app_spec, database_url)
    with taskflow_errors():
        broker = create_broker(conf)
        try:
            broker.migrate()
            clock = SystemClock()
            yield Schedules(
                lambda: broker,
                clock,
                handle=lambda wid: WorkflowHandle(broker, wid, clock=clock),
            )
        finally:
            broker.close()


def _record(s: ScheduleInfo) -> dict[str, Any]:
    return {
        "name": s.name,
        "workflow": s.workflow,
        "cron": s.cron,
        "tz": s.tz,
        "next_fire_at": s.next_fire_at,
        "last_fired_at": s.last_fired_at,
        "state": "paused" if s.paused else "active",
        "paused": s.paused,
        "backfill": s.backfill,
        "queue": s.queue,
        "source": s.source,
        "context": s.context,
    }


@click.group()
def schedules() -> None:
    """List, pause, resume, trigger, backfill and delete schedules."""


@schedules.command("list")
@database_options
@json_option
@click.pass_context
def schedules_list(
    ctx: click.Context, app_spec: str | None, database_url: str | None, as_json: bool
) -> None:
    """Every schedule in the database with its next fire time (UTC)."""
    with _schedules(ctx, app_spec, database_url) as s:
        rows = [_record(i) for i in s.list()]
    emit(rows, COLUMNS, as_json)


def _name_command(verb: str, doc: str) -> None:
    @schedules.command(verb, help=doc)
    @click.argument("name")
    @database_options
    @click.pass_context
    def command(
        ctx: click.Context, name: str, app_spec: str | None, database_url: str | None
    ) -> None:
        with _schedules(ctx, app_spec, database_url) as s:
            getattr(s, verb)(name)
        click.echo(f"{name}: {verb}d" if verb.endswith("e") else f"{name}: {verb}ed")


_name_command("pause", "Stop firing schedule NAME until it is resumed.")
_name_command(
    "resume",
    "Fire schedule NAME again from its next time; times missed while paused are not fired "
    "(use backfill).",
)
_name_command("delete", "Remove schedule NAME (the workflows it fired are kept).")


@schedules.command("trigger")
@click.argument("name")
@database_options
@json_option
@click.pass_context
def schedules_trigger(
    ctx: click.Context, name: str, app_spec: str | None, database_url: str | None, as_json: bool
) -> None:
    """Fire schedule NAME now, once, with a fresh workflow id; prints the id."""
    with _schedules(ctx, app_spec, database_url) as s:
        handle = s.trigger(name)
    if as_json:
        emit([{"id": handle.id}], ("id",), True)
    else:
        click.echo(handle.id)


def _when(ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-11-20T03:00 or 2026-11-20T03:00+01:00)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@schedules.command("backfill")
@click.argument("name")
@click.argument("start", callback=_when)
@click.argument("end", callback=_when)
@database_options
@json_option
@click.pass_context
def schedules_backfill(
    ctx: click.Context,
    name: str,
    start: datetime,
    end: datetime,
    app_spec: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Enqueue every time of schedule NAME from START to END (ISO 8601; UTC unless an offset
    is given) that has not fired yet; prints the new workflow ids. Running it again enqueues
    nothing new."""
    with _schedules(ctx, app_spec, database_url) as s:
        ids = s.backfill(name, start, end)
    if as_json:
        emit([{"id": i} for i in ids], ("id",), True)
        return
    for i in ids:
        click.echo(i)
    click.echo(f"{name}: {len(ids)} workflow(s) enqueued", err=True)


__all__ = ["beat", "schedules"]
