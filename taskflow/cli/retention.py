"""``taskflow prune`` (retention of finished workflows, on demand) and ``taskflow purge``
(cancel everything still waiting in a queue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from taskflow import retention
from taskflow.broker import Broker
from taskflow.cli.common import (
    database_conf,
    database_options,
    duration_callback,
    emit,
    emit_one,
    json_option,
    open_broker,
    resolve_app,
    taskflow_errors,
)
from taskflow.clock import SystemClock, now_ms
from taskflow.queues import DEFAULT_QUEUE, validate_queue_name

_TABLES = ("workflows", "steps", "events", "streams", "messages", "debounces", "queue_starts")


@click.command()
@database_options
@click.option(
    "--older-than",
    callback=duration_callback,
    default=None,
    help="Remove what finished longer ago than this: 7d, 12h, 30m, 1w, 1d12h or seconds "
    "(default: the app's result_expires, 7d unless configured).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Workflows deleted per transaction (default: result_expires_batch, 1000).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@json_option
@click.pass_context
def prune(
    ctx: click.Context,
    app_spec: str | None,
    database_url: str | None,
    older_than: timedelta | None,
    batch_size: int | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete finished workflows (SUCCESS, ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED)
    that finished before the cutoff, with their steps, events, streams and messages, in
    short transactions of --batch-size workflows that never block running workers. A
    finished child stays while its parent runs. Workers do the same on their own every
    minute (result_expires); this runs it now, e.g. with another cutoff. A removed
    workflow's id may be started again afterwards."""
    conf = database_conf(ctx, app_spec, database_url)
    with taskflow_errors():
        expires_ms, default_batch, _ = retention.settings(conf)
    if older_than is not None:
        expires_ms = max(1, int(older_than.total_seconds() * 1000))
    elif expires_ms is None:
        raise click.UsageError("result_expires is off for this app; give --older-than")
    batch = batch_size or default_batch
    clock = SystemClock()
    now = now_ms(clock)
    before = now - expires_ms
    with open_broker(ctx, app_spec, database_url) as broker:
        if dry_run:
            done = broker.count_prunable(before, now)
        else:
            done = retention.prune(broker, before, batch=batch, now=lambda: now_ms(clock))
    cutoff = datetime.fromtimestamp(before / 1000, UTC)
    counts = {table: getattr(done, table) for table in _TABLES}
    if as_json:
        emit_one(
            {
                "dry_run": dry_run,
                "finished_before": cutoff,
                "older_than_seconds": expires_ms / 1000,
                **counts,
            },
            as_json=True,
        )
        return
    verb = "would remove (dry run)" if dry_run else "removed"
    click.echo(
        f"{verb}: workflows that finished before {cutoff.isoformat(sep=' ', timespec='seconds')}"
        f" (older than {_human(expires_ms)}), with their rows:"
    )
    emit([{"table": t, "rows": n} for t, n in counts.items()], ["table", "rows"], as_json=False)


def _human(ms: int) -> str:
    seconds = ms / 1000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:g}s"


@click.command()
@database_options
@click.option(
    "-Q",
    "--queue",
    "queues",
    required=True,
    help="The queue to purge (comma-separated for several).",
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def purge(
    ctx: click.Context,
    app_spec: str | None,
    database_url: str | None,
    queues: str,
    yes: bool,
    as_json: bool,
) -> None:
    """Cancel every workflow still waiting in a queue: ENQUEUED, and DELAYED (a countdown, a
    retry, or a parked sleep or wait), with their unfinished child workflows, as `workflows
    cancel` does. Running (PENDING) workflows are left alone: cancel them by id. Asks for
    confirmation, showing how many wait, unless --yes. Cancelled workflows stay listed (they
    can be resumed) until retention removes them."""
    names = [q.strip() for q in queues.split(",") if q.strip()]
    if not names:
        raise click.UsageError("give a queue name with -Q/--queue")
    with taskflow_errors():
        for name in names:
            validate_queue_name(name)
    app = resolve_app(ctx, app_spec)
    declared = set(app.queues) if app is not None else set()
    with open_broker(ctx, app_spec, database_url) as broker:
        waiting = _waiting(broker, names, declared)
        total = sum(waiting.values())
        if total and not yes:
            listed = ", ".join(f"{n} in {q!r}" for q, n in waiting.items())
            click.confirm(
                f"Cancel {total} waiting workflow(s) ({listed}) and their unfinished "
                "children? Running ones are left alone.",
                abort=True,
                err=True,
            )
        now = now_ms(SystemClock())
        rows = []
        for name in names:
            # Nothing was shown waiting, nothing confirmed: what arrived since stays.
            ids = broker.purge_queue(name, now) if waiting[name] or yes else []
            rows.append({"queue": name, "cancelled": len(ids), "ids": sorted(ids)})
    emit(rows, ["queue", "cancelled"], as_json)


def _waiting(broker: Broker, names: list[str], declared: set[str]) -> dict[str, int]:
    """How many workflows wait in each queue; an unknown queue is an error."""
    depths = broker.queue_depths()
    known = broker.known_queues() | set(broker.queue_specs()) | declared | {DEFAULT_QUEUE}
    known |= {d.queue for d in depths}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.ClickException(
            f"unknown queue {unknown[0]!r}: no worker ever served it and nothing waits in "
            f"it (known: {', '.join(sorted(known))})"
        )
    return {n: sum(d.enqueued + d.delayed for d in depths if d.queue == n) for n in names}


__all__ = ["prune", "purge"]
