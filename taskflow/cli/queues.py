"""``taskflow queues``: the limits in force and the work each queue holds."""

from __future__ import annotations

import click

from taskflow.cli.common import database_options, open_broker
from taskflow.queue_table import queue_table


@click.group()
def queues() -> None:
    """Inspect queues: limits in force and the work they hold."""


@queues.command("list")
@database_options
@click.pass_context
def queues_list(ctx: click.Context, app_spec: str | None, database_url: str | None) -> None:
    """Every known queue: its limits (as the newest app version declared them), how many
    workflows wait (ENQUEUED, DELAYED) and run (PENDING), per partition where partitioned."""
    with open_broker(ctx, app_spec, database_url) as broker:
        records = broker.queue_specs()
        depths = broker.queue_depths()
    for line in queue_table(records, depths):
        click.echo(line)


__all__ = ["queues"]
