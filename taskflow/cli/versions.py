"""``taskflow versions list|set-latest``: the app versions workers have run, and which one
is the latest (whose queue declarations win)."""

from __future__ import annotations

import click
import msgspec

from taskflow.cli.common import database_options, emit, json_option
from taskflow.cli.workflows import OneLineErrors, open_client

COLUMNS = ("version", "latest", "created_at", "latest_at")


@click.group()
def versions() -> None:
    """List app versions and choose the latest one."""


@versions.command("list", cls=OneLineErrors)
@database_options
@json_option
@click.pass_context
def versions_list(
    ctx: click.Context, app_spec: str | None, database_url: str | None, as_json: bool
) -> None:
    """Every app version a worker has run, the latest first: when it was first seen, and
    since when it is (or last was) the latest."""
    with open_client(ctx, app_spec, database_url) as client:
        found = client.list_versions()
    rows: list[dict[str, object]] = []
    for i, version in enumerate(found):
        # The table marks the latest with "*"; JSON says true or false.
        mark: object = (i == 0) if as_json else ("*" if i == 0 else None)
        rows.append({**msgspec.structs.asdict(version), "latest": mark})
    emit(rows, COLUMNS, as_json)


@versions.command("set-latest", cls=OneLineErrors)
@click.argument("version")
@database_options
@click.pass_context
def versions_set_latest(
    ctx: click.Context, version: str, app_spec: str | None, database_url: str | None
) -> None:
    """Make VERSION the latest (e.g. to roll back): when versions declare a queue
    differently, the latest one's limits apply from its workers' next declaration on."""
    with open_client(ctx, app_spec, database_url) as client:
        client.set_latest_version(version)
    click.echo(f"{version} is now the latest app version")


__all__ = ["versions"]
