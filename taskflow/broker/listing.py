"""What both dialects share for listing workflows, forking one, and app versions.

``list_workflows.sql`` is one complete query whose optional lines carry a tag
(``-- filter:<name>``, ``-- order:<name>``, ``-- lead:<name>[:<order>]``, see the Postgres
file); :func:`listing_query` keeps the lines of the filters given and drops the others, so
each combination of filters is a plain query the planner serves from its own index, and every
value stays a bind parameter. (A single static query with ``(:x IS NULL OR col = :x)``
defeats index use on SQLite and, once prepared, on Postgres.)
"""

from __future__ import annotations

import re
from typing import Any

from taskflow.broker.base import VersionRow, WorkflowFilter
from taskflow.broker.sql_broker import workflow_row
from taskflow.models import WorkflowRow

_TAG = re.compile(r"--\s*(filter|order|lead):(\w+)(?::(\w+))?\s*$")


def listing_query(
    text: str,
    where: WorkflowFilter,
    limit: int | None,
    offset: int,
    newest_first: bool,
    load_inputs: bool,
    load_outputs: bool,
    list_param: Any,
    no_limit: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """The text of ``list_workflows.sql`` with only the lines ``where`` needs, and its bind
    parameters. ``list_param`` binds a list of strings (an array, or JSON text on SQLite);
    ``no_limit`` is what the dialect reads as "no limit" (NULL on Postgres, -1 on
    SQLite)."""
    params: dict[str, Any] = {
        "limit": no_limit if limit is None else limit,
        "offset": offset,
        "load_inputs": load_inputs,
        "load_outputs": load_outputs,
    }
    statuses = [s.value for s in where.statuses] if where.statuses is not None else None
    if statuses is not None and len(statuses) == 1:
        # One status is an equality: an index scan in created_at order, no sort.
        params["status"] = statuses[0]
    elif statuses is not None:
        params["statuses"] = list_param(statuses)
    for key, value in (
        ("name", where.name),
        ("queue", where.queue),
        ("user", where.user),
        ("app_version", where.app_version),
        ("start", where.created_from),
        ("end", where.created_before),
    ):
        if value is not None:
            params[key] = value
    order = "newest" if newest_first else "oldest"
    lead = _lead(text, params)
    lines: list[str] = []
    for line in text.splitlines():
        tag = _TAG.search(line)
        if tag is not None:
            kind, name, direction = tag.groups()
            keep = (
                (kind == "filter" and name in params and name != lead)
                or (kind == "order" and name == order)
                or (kind == "lead" and name == lead and direction in (None, order))
            )
            if not keep:
                continue
        lines.append(line)
    return "\n".join(lines), params


_LEADS = ("status", "name", "queue", "user", "app_version")
"""The filters that can lead a query (each leads an index ending with ``created_at``)."""


def _lead(text: str, params: dict[str, Any]) -> str | None:
    """The one filter of :data:`_LEADS` given (one status only), when it is the only one and
    the dialect's query has lead lines; else None."""
    given = [name for name in (*_LEADS, "statuses") if name in params]
    if len(given) != 1 or given[0] == "statuses" or f"-- lead:{given[0]}" not in text:
        return None
    return given[0]


def listed_row(values: tuple[Any, ...]) -> WorkflowRow:
    """A row of ``list_workflows.sql`` (the ``get_workflow.sql`` columns; inputs not loaded
    come back NULL and are '' here)."""
    row = list(values)
    if row[3] is None:
        row[3] = ""
    return workflow_row(row)


def fork_params(
    workflow_id: str,
    new_id: str,
    start_step: int,
    now: int,
    queue: str,
    app_version: str | None,
    partition_key: str | None,
) -> dict[str, Any]:
    """Bind parameters of ``fork_workflow.sql`` (the Postgres broker adds its channel)."""
    return {
        "id": workflow_id,
        "new_id": new_id,
        "start_step": start_step,
        "now": now,
        "queue": queue,
        "app_version": app_version,
        "partition_key": partition_key,
    }


def version_rows(rows: list[tuple[Any, ...]]) -> list[VersionRow]:
    """Rows of ``list_versions.sql``."""
    return [VersionRow(str(v), int(created), int(latest)) for v, created, latest in rows]


__all__ = ["fork_params", "listed_row", "listing_query", "version_rows"]
