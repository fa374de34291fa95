"""``taskflow workflows list|show|steps|cancel|resume|fork``: find, inspect and steer
workflows from a shell, through a :class:`~taskflow.client.Client` (no app code needed).

Every command takes ``-A app`` or ``--database-url``, prints an aligned table (or ``key:
value`` lines) for people and JSON with ``--json``, and fails with one line on stderr and a
non-zero exit: bad input is refused before anything is changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
import msgspec

from taskflow.cli.common import (
    database_conf,
    database_options,
    emit,
    emit_one,
    json_option,
    parse_duration,
    taskflow_errors,
)
from taskflow.client import Client
from taskflow.clock import SystemClock
from taskflow.errors import UnknownWorkflowError
from taskflow.models import ErrorInfo, StepInfo, WorkflowInfo, workflow_info
from taskflow.status import Status

LIST_COLUMNS = (
    "id",
    "name",
    "status",
    "queue",
    "created_at",
    "finished_at",
    "attempts",
    "app_version",
)
STEP_COLUMNS = ("step_id", "name", "status", "child_workflow_id", "started_at", "ms", "error")


class OneLineErrors(click.Command):
    """A command whose bad options fail like every other error here: ``Error: <reason>`` on
    one line (exit code 2, as click's usage errors), without the usage text."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _UsageError(exc.format_message()) from None


class _UsageError(click.ClickException):
    exit_code = 2


@contextmanager
def open_client(
    ctx: click.Context, app_spec: str | None, database_url: str | None
) -> Iterator[Client]:
    """A client on the command's database (the app's, or ``--database-url``), closed
    afterwards; taskflow errors inside the block become one-line errors."""
    conf = database_conf(ctx, app_spec, database_url)
    with taskflow_errors():
        client = Client.from_conf(conf)
        try:
            yield client
        finally:
            client.close()


def _error(info: ErrorInfo | None) -> str | None:
    if info is None:
        return None
    message = info.message.splitlines()[0] if info.message else ""
    return f"{info.type_name}: {message}" if message else info.type_name


def _when(text: str, option: str) -> datetime:
    """``--since``/``--until``: a duration ago (``1h``, ``2d``) or an ISO 8601 time (naive
    means UTC)."""
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        pass
    try:
        ago = parse_duration(text)
    except click.BadParameter:
        raise _UsageError(
            f"invalid {option} {text!r}: give a duration ago (e.g. 30m, 12h, 7d) or an ISO "
            "8601 time (e.g. 2025-01-31T12:00:00)"
        ) from None
    return datetime.fromtimestamp(SystemClock().now(), tz=UTC) - ago


def _statuses(values: Sequence[str]) -> list[Status] | None:
    names = [n.strip().upper() for v in values for n in v.split(",") if n.strip()]
    if not names:
        return None
    known = {s.value for s in Status}
    bad = [n for n in names if n not in known]
    if bad:
        raise _UsageError(
            f"invalid --status {', '.join(bad)}: statuses are {', '.join(s.value for s in Status)}"
        )
    return [Status(n) for n in names]


def _json(value: object) -> Any:
    return msgspec.to_builtins(value)


def _row(info: WorkflowInfo) -> dict[str, object]:
    row: dict[str, object] = {f: getattr(info, f) for f in info.__struct_fields__}
    row["error"] = _error(info.error)
    return row


def _step_row(step: StepInfo) -> dict[str, object]:
    row: dict[str, object] = {f: getattr(step, f) for f in step.__struct_fields__}
    row["error"] = _error(step.error)
    if step.started_at is not None and step.finished_at is not None:
        row["ms"] = round((step.finished_at - step.started_at).total_seconds() * 1000)
    return row


@click.group()
def workflows() -> None:
    """Find, inspect, cancel, resume and fork workflows."""


@workflows.command("list", cls=OneLineErrors)
@click.option(
    "--status",
    "status",
    multiple=True,
    help="Only this status (repeat, or comma-separate, for several): ENQUEUED, DELAYED, "
    "PENDING, SUCCESS, ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED.",
)
@click.option("--name", default=None, help="Only workflows registered under this name.")
@click.option("-Q", "--queue", default=None, help="Only workflows of this queue.")
@click.option("--user", default=None, help="Only workflows started for this user.")
@click.option("--app-version", default=None, help="Only workflows of this app version.")
@click.option(
    "--since", default=None, help="Created at or after: a duration ago (1h, 7d) or ISO time."
)
@click.option("--until", default=None, help="Created before: a duration ago (30m) or an ISO time.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Rows to show."
)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Rows to skip first.")
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--inputs", "load_inputs", is_flag=True, help="Also load the arguments.")
@click.option("--outputs", "load_outputs", is_flag=True, help="Also load the results.")
@database_options
@json_option
@click.pass_context
def workflows_list(
    ctx: click.Context,
    status: tuple[str, ...],
    name: str | None,
    queue: str | None,
    user: str | None,
    app_version: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
    oldest_first: bool,
    load_inputs: bool,
    load_outputs: bool,
    app_spec: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Workflows matching every filter given, newest first, one page at a time (--limit,
    --offset). Each filter is served by an index, so this stays fast on large tables."""
    statuses = _statuses(status)
    start = _when(since, "--since") if since is not None else None
    end = _when(until, "--until") if until is not None else None
    with open_client(ctx, app_spec, database_url) as client:
        found = client.list_workflows(
            status=statuses,
            name=name,
            queue=queue,
            user=user,
            app_version=app_version,
            start=start,
            end=end,
            limit=limit,
            offset=offset,
            newest_first=not oldest_first,
            load_inputs=load_inputs,
            load_outputs=load_outputs,
        )
    if as_json:
        emit([_json(info) for info in found], LIST_COLUMNS, as_json=True)
        return
    columns: tuple[str, ...] = LIST_COLUMNS
    if load_inputs:
        columns += ("inputs",)
    if load_outputs:
        columns += ("output",)
    rows = [_row(info) for info in found]
    for row in rows:
        for key in ("inputs", "output"):
            if row.get(key) is not None:
                row[key] = msgspec.json.encode(row[key]).decode()
    emit(rows, columns, as_json=False)


@workflows.command("show", cls=OneLineErrors)
@click.argument("workflow_id")
@database_options
@json_option
@click.pass_context
def workflows_show(
    ctx: click.Context,
    workflow_id: str,
    app_spec: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Everything recorded about one workflow: status, queue, times, attempts, owner,
    version, error (with its traceback), arguments and result."""
    with open_client(ctx, app_spec, database_url) as client:
        row = client.broker.get_workflow(workflow_id)
        if row is None:
            raise UnknownWorkflowError(f"no workflow with id {workflow_id!r}")
        info = workflow_info(row)
        record = _row(info)
        record["inputs"] = msgspec.json.decode(row.inputs) if row.inputs else None
        record["output"] = msgspec.json.decode(row.output) if row.output is not None else None
        record["steps"] = len(client.steps(workflow_id))
    if as_json:
        data = _json(info)
        data.update(inputs=record["inputs"], output=record["output"], steps=record["steps"])
        emit_one(data, as_json=True)
        return
    for key in ("inputs", "output"):
        if record[key] is not None:
            record[key] = msgspec.json.encode(record[key]).decode()
    emit_one(record, as_json=False)
    if info.error is not None and info.error.traceback:
        # Indented under the record, so every record line still starts with its key.
        click.echo("traceback:")
        for line in info.error.traceback.rstrip().splitlines():
            click.echo(f"  {line}")


@workflows.command("steps", cls=OneLineErrors)
@click.argument("workflow_id")
@database_options
@json_option
@click.pass_context
def workflows_steps(
    ctx: click.Context,
    workflow_id: str,
    app_spec: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """The recorded steps of a workflow, in order: id, name, status, the child workflow it
    started, when it started, how long it took (ms), and its error."""
    with open_client(ctx, app_spec, database_url) as client:
        found = client.steps(workflow_id)
    if as_json:
        emit([_json(s) for s in found], STEP_COLUMNS, as_json=True)
        return
    emit([_step_row(s) for s in found], STEP_COLUMNS, as_json=False)


@workflows.command("cancel", cls=OneLineErrors)
@click.argument("workflow_ids", nargs=-1, required=True)
@database_options
@json_option
@click.pass_context
def workflows_cancel(
    ctx: click.Context,
    workflow_ids: tuple[str, ...],
    app_spec: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Cancel workflows (and their unfinished descendants) in one statement. A running one
    stops at its next step. Finished ones are skipped and reported; an unknown id cancels
    nothing and fails."""
    wanted = list(dict.fromkeys(workflow_ids))
    with open_client(ctx, app_spec, database_url) as client:
        before = {i: client.broker.get_status(i) for i in wanted}
        unknown = [i for i in wanted if before[i] is None]
        if unknown:
            raise UnknownWorkflowError(
                f"no workflow with id {', '.join(map(repr, unknown))}; nothing was cancelled"
            )
        done = client.cancel(*wanted)
    rows: list[dict[str, object]] = []
    for i in wanted:
        status = before[i]
        skipped = i not in done and status is not None
        rows.append(
            {
                "id": i,
                "result": "skipped" if skipped else "cancelled",
                "status": status if skipped else Status.CANCELLED,
            }
        )
    rows += [
        {"id": i, "result": "cancelled (descendant)", "status": Status.CANCELLED}
        for i in done
        if i not in before
    ]
    emit(rows, ("id", "result", "status"), as_json)


@workflows.command("resume", cls=OneLineErrors)
@click.argument("workflow_ids", nargs=-1, required=True)
@click.option("-Q", "--queue", default=None, help="Resume on this queue (default: their own).")
@database_options
@json_option
@click.pass_context
def workflows_resume(
    ctx: click.Context,
    workflow_ids: tuple[str, ...],
    queue: str | None,
    app_spec: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Run CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflows again from their
    last completed step (a failed last step runs again). All or nothing: an unknown id or
    one in another status resumes none."""
    with open_client(ctx, app_spec, database_url) as client:
        handles = client.resume(*workflow_ids, queue=queue)
        rows = [_row(h.info()) for h in handles]
    emit(rows, ("id", "name", "status", "queue"), as_json)


@workflows.command("fork", cls=OneLineErrors)
@click.argument("workflow_id")
@click.option(
    "-s",
    "--start-step",
    type=click.IntRange(min=0),
    required=True,
    help="Run from this step id on (see `workflows steps`); the steps before it are "
    "replayed from their recorded outcomes. 0 runs it again from the start.",
)
@click.option("--app-version", default=None, help="Run it on this version (default: its own).")
@click.option("-Q", "--queue", default=None, help="Enqueue it here (default: its own queue).")
@click.option("--id", "new_id", default=None, help="Id of the new workflow (default: a UUID).")
@database_options
@json_option
@click.pass_context
def workflows_fork(
    ctx: click.Context,
    workflow_id: str,
    start_step: int,
    app_version: str | None,
    queue: str | None,
    new_id: str | None,
    app_spec: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Start a new workflow that replays WORKFLOW_ID's steps before --start-step and runs
    the rest afresh, optionally on another app version or queue. Prints the new workflow."""
    with open_client(ctx, app_spec, database_url) as client:
        handle = client.fork(
            workflow_id, start_step, app_version=app_version, queue=queue, new_id=new_id
        )
        info = handle.info()
        copied = len(client.steps(handle.id))
    record: dict[str, object] = {
        "id": info.id,
        "forked_from": workflow_id,
        "name": info.name,
        "status": info.status,
        "queue": info.queue,
        "app_version": info.app_version,
        "start_step": start_step,
        "steps_copied": copied,
    }
    emit_one(record, as_json)


__all__ = ["workflows"]
