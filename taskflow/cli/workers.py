"""``taskflow status`` and ``taskflow inspect active|scheduled|registered|stats``: the
workers and what they run.

Celery asks live workers over the broker and waits for replies; here everything comes from
the database, so an answer never depends on a worker being responsive: every worker (and
every process running workflows directly) upserts its heartbeat row every few seconds, and
a running workflow's row names its owner. An executor whose heartbeat is older than
``worker_heartbeat_timeout`` is shown as ``dead``: live workers recover its workflows and,
later, remove its row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta

import click
from click.decorators import FC

from taskflow.broker import Broker, create_broker
from taskflow.cli.common import (
    database_conf,
    database_options,
    duration_callback,
    emit,
    json_option,
    taskflow_errors,
)
from taskflow.clock import SystemClock, now_ms
from taskflow.models import DelayedRef, ExecutorBeat, ms_to_datetime
from taskflow.status import Status

_LIMIT = 100
"""Rows ``inspect active`` and ``inspect scheduled`` print unless told otherwise."""


class _View:
    """One reading of the executors table, judged against the heartbeat timeout."""

    def __init__(self, broker: Broker, timeout: float) -> None:
        self.now = now_ms(SystemClock())
        self.timeout = timeout
        self.executors = broker.list_executors()
        self.by_id = {e.executor_id: e for e in self.executors}

    def state(self, beat: ExecutorBeat) -> str:
        """``live`` while the heartbeat is within the timeout, else ``dead``."""
        return "live" if self.now - beat.heartbeat_at <= self.timeout * 1000 else "dead"

    def owner(self, executor_id: str | None) -> tuple[str | None, str]:
        """The name and state of a workflow's owner; ``unknown`` when it has no heartbeat
        row (gone, or the row was reaped or lost with a database restart)."""
        beat = self.by_id.get(executor_id or "")
        if beat is None:
            return None, "unknown"
        return beat.name, self.state(beat)

    def base(self, beat: ExecutorBeat) -> dict[str, object]:
        """What every listing says of an executor."""
        return {
            "name": beat.name,
            "state": self.state(beat),
            "kind": beat.kind,
            "executor_id": beat.executor_id,
            "hostname": beat.hostname,
            "pid": beat.pid,
        }


@contextmanager
def _inspect(
    ctx: click.Context, app_spec: str | None, database_url: str | None
) -> Iterator[tuple[Broker, float]]:
    """A migrated broker on the command's database and the heartbeat timeout in force (the
    app's with ``-A``, else the default); errors become one line and exit code 1."""
    conf = database_conf(ctx, app_spec, database_url)
    with taskflow_errors():
        broker = create_broker(conf)
        try:
            broker.migrate()
            yield broker, conf.worker_heartbeat_timeout
        finally:
            broker.close()


def _ago(ms: int) -> str:
    """A span of milliseconds for people: ``0.4s``, ``12s``, ``5m03s``, ``2h07m``,
    ``3d04h``."""
    seconds = max(ms, 0) / 1000
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _names(counts: Mapping[str, int]) -> str:
    """``{name: count}`` as ``a (2), b`` (most first)."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(name if n == 1 else f"{name} ({n})" for name, n in ordered) or "-"


def _show(
    records: list[dict[str, object]],
    table: list[dict[str, object]],
    columns: list[str],
    as_json: bool,
    empty: str,
) -> None:
    """``records`` as JSON for scripts, or ``table`` (the same rows with cells written for
    people) as an aligned table, or ``empty`` when there is nothing."""
    if as_json:
        emit(records, columns, as_json=True)
    elif table:
        emit(table, columns, as_json=False)
    else:
        click.echo(empty)


def _more(limit: int, what: str) -> None:
    # On stderr, so that the table or JSON on stdout stays whole for whoever parses it.
    click.echo(f"(only the first {limit} {what}; raise --limit to see more)", err=True)


# -- taskflow status ---------------------------------------------------------------------------
@click.command()
@database_options
@json_option
@click.pass_context
def status(
    ctx: click.Context, app_spec: str | None, database_url: str | None, as_json: bool
) -> None:
    """Show the workers, what they run and their last heartbeat.

    One row per worker (and per process running workflows directly): host, pid, version,
    queues, concurrency, running workflows, last heartbeat. Those silent for longer than
    worker_heartbeat_timeout show as dead until live workers recover their work and remove
    them. Exits 1 when no worker is live, as Celery's does."""
    with _inspect(ctx, app_spec, database_url) as (broker, timeout):
        view = _View(broker, timeout)
        running = broker.running_by_executor()
    records: list[dict[str, object]] = []
    table: list[dict[str, object]] = []
    for beat in view.executors:
        runs = running.get(beat.executor_id, {})
        age = view.now - beat.heartbeat_at
        record: dict[str, object] = {
            **view.base(beat),
            "app_version": beat.app_version,
            "pool": beat.pool,
            "queues": beat.queues,
            "concurrency": beat.concurrency,
            "running": sum(runs.values()),
            "runs": runs,
            "started_at": ms_to_datetime(beat.started_at),
            "heartbeat_at": ms_to_datetime(beat.heartbeat_at),
            "heartbeat_age": age / 1000,
        }
        records.append(record)
        table.append(
            {
                **record,
                "version": beat.app_version,
                "runs": _names(runs),
                "heartbeat": f"{_ago(age)} ago",
            }
        )
    columns = ["name", "state", "kind", "hostname", "pid", "version", "queues"]
    columns += ["concurrency", "running", "runs", "heartbeat"]
    _show(records, table, columns, as_json, "no workers")
    live = sum(1 for r in records if r["state"] == "live")
    if not as_json:
        click.echo(
            f"{live} live, {len(records) - live} dead "
            f"(live: a heartbeat within the last {timeout:g}s)"
        )
    if not live:
        raise click.ClickException("no live workers")


# -- taskflow inspect ... ----------------------------------------------------------------------
@click.group()
def inspect() -> None:
    """Inspect workers: what they run, wait for, serve and did."""


def _limit_option(fn: FC) -> FC:
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=_LIMIT,
        show_default=True,
        help="Print at most this many workflows.",
    )(fn)


@inspect.command("active")
@database_options
@_limit_option
@json_option
@click.pass_context
def inspect_active(
    ctx: click.Context, app_spec: str | None, database_url: str | None, limit: int, as_json: bool
) -> None:
    """List running workflows per worker.

    Running (PENDING) workflows: worker, id, name, queue, start time, run time and attempts.
    A workflow parked in a durable wait does not run: see ``inspect scheduled``."""
    with _inspect(ctx, app_spec, database_url) as (broker, timeout):
        view = _View(broker, timeout)
        rows = broker.list_running(limit + 1)
    records: list[dict[str, object]] = []
    table: list[dict[str, object]] = []
    for row in rows[:limit]:
        worker, state = view.owner(row.executor_id)
        runtime = view.now - row.started_at if row.started_at is not None else None
        record: dict[str, object] = {
            "worker": worker,
            "worker_state": state,
            "executor_id": row.executor_id,
            "id": row.id,
            "name": row.name,
            "queue": row.queue,
            "started_at": ms_to_datetime(row.started_at),
            "runtime": runtime / 1000 if runtime is not None else None,
            "attempts": row.attempts,
        }
        records.append(record)
        shown = worker or row.executor_id
        table.append(
            {
                **record,
                "worker": shown if state == "live" else f"{shown} ({state})",
                "runtime": _ago(runtime) if runtime is not None else None,
            }
        )
    columns = ["worker", "id", "name", "queue", "started_at", "runtime", "attempts"]
    _show(records, table, columns, as_json, "no running workflows")
    if len(rows) > limit:
        _more(limit, "running workflows")


def _waits_for(row: DelayedRef) -> str:
    """What a DELAYED workflow waits for, for people."""
    if row.wait_kind == "recv":
        return f"recv({row.wait_key})" if row.wait_key else "recv"
    if row.wait_kind == "event":
        return f"event({row.wait_on}, {row.wait_key})"
    if row.wait_kind == "child":
        return f"child({row.wait_on})"
    if row.wait_kind is not None:
        return row.wait_kind
    # Without a recorded wait the row was delayed when enqueued (countdown, eta, debounce)
    # or by a workflow-level retry, which counts in ``retries``.
    return "retry" if row.retries else "eta"


@inspect.command("scheduled")
@database_options
@click.option("-Q", "--queue", default=None, help="Only this queue's workflows.")
@_limit_option
@json_option
@click.pass_context
def inspect_scheduled(
    ctx: click.Context,
    app_spec: str | None,
    database_url: str | None,
    queue: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List delayed workflows: when each wakes, what it waits for.

    DELAYED workflows, soonest first. What each waits for: eta (a countdown, eta or
    debounce), retry (a retry's countdown), or sleep, recv, event, child (a parked durable
    wait, which also ends when what it waits for arrives)."""
    with _inspect(ctx, app_spec, database_url) as (broker, _timeout):
        rows = broker.list_delayed(limit + 1, queue)
    records: list[dict[str, object]] = [
        {
            "id": row.id,
            "name": row.name,
            "queue": row.queue,
            "wake_at": ms_to_datetime(row.delay_until),
            "waits_for": _waits_for(row),
            "wait_kind": row.wait_kind,
            "wait_on": row.wait_on,
            "wait_key": row.wait_key,
            "retries": row.retries,
            "created_at": ms_to_datetime(row.created_at),
        }
        for row in rows[:limit]
    ]
    columns = ["id", "name", "queue", "wake_at", "waits_for", "retries"]
    _show(records, records, columns, as_json, "no scheduled workflows")
    if len(rows) > limit:
        _more(limit, "scheduled workflows")


@inspect.command("registered")
@database_options
@json_option
@click.pass_context
def inspect_registered(
    ctx: click.Context, app_spec: str | None, database_url: str | None, as_json: bool
) -> None:
    """List the workflow names each worker serves.

    As each worker recorded them in its heartbeat row, so no -A is needed."""
    with _inspect(ctx, app_spec, database_url) as (broker, timeout):
        view = _View(broker, timeout)
    records: list[dict[str, object]] = []
    table: list[dict[str, object]] = []
    for beat in view.executors:
        if beat.workflows is None:
            continue  # a process running workflows directly records none
        record: dict[str, object] = {**view.base(beat), "workflows": beat.workflows}
        records.append(record)
        table += [{"worker": beat.name, **record, "workflow": name} for name in beat.workflows]
    _show(records, table, ["worker", "state", "workflow"], as_json, "no workers")


_FINISHED_COLUMNS = {
    Status.SUCCESS: "success",
    Status.ERROR: "error",
    Status.CANCELLED: "cancelled",
    Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED: "exceeded",
}
"""Every final status and its column in ``inspect stats``."""


@inspect.command("stats")
@database_options
@click.option(
    "--since",
    "window",
    default="1h",
    show_default=True,
    callback=duration_callback,
    help="Count the workflows finished within this span (e.g. 30m, 1h, 1d).",
)
@json_option
@click.pass_context
def inspect_stats(
    ctx: click.Context,
    app_spec: str | None,
    database_url: str | None,
    window: timedelta,
    as_json: bool,
) -> None:
    """Show per-worker figures: uptime, running and finished work.

    Per worker: pid, pool, concurrency, uptime, running workflows, and how many workflows it
    finished within --since, per final status (exceeded: MAX_RECOVERY_ATTEMPTS_EXCEEDED)."""
    with _inspect(ctx, app_spec, database_url) as (broker, timeout):
        view = _View(broker, timeout)
        running = broker.running_by_executor()
        since = view.now - int(window.total_seconds() * 1000)
        finished = broker.finished_by_executor(since)
    records: list[dict[str, object]] = []
    table: list[dict[str, object]] = []
    for beat in view.executors:
        done = finished.get(beat.executor_id, {})
        counts = {status: done.get(status, 0) for status in _FINISHED_COLUMNS}
        uptime = view.now - beat.started_at
        record: dict[str, object] = {
            **view.base(beat),
            "pool": beat.pool,
            "concurrency": beat.concurrency,
            "started_at": ms_to_datetime(beat.started_at),
            "uptime": uptime / 1000,
            "running": sum(running.get(beat.executor_id, {}).values()),
            "finished": {status.value: n for status, n in counts.items()},
            "finished_since": ms_to_datetime(since),
        }
        records.append(record)
        table.append(
            {
                **record,
                "uptime": _ago(uptime),
                **{_FINISHED_COLUMNS[status]: n for status, n in counts.items()},
            }
        )
    columns = ["name", "state", "pid", "pool", "concurrency", "uptime", "running"]
    columns += list(_FINISHED_COLUMNS.values())
    _show(records, table, columns, as_json, "no workers")


__all__ = ["inspect", "status"]
