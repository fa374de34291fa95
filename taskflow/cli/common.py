"""What every command shares: finding the app or database, opening the broker, printing a
table for people or JSON for scripts, and parsing durations such as ``7d``.

Errors leave as one line on stderr with a non-zero exit (click's ``ClickException``), never
as a traceback: an operator reads them in a terminal or a cron mail.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

import click

from taskflow.app import Taskflow
from taskflow.broker import Broker, create_broker
from taskflow.config import Config
from taskflow.errors import TaskflowError
from taskflow.loader import load_app

F = TypeVar("F", bound=Callable[..., Any])


def app_option(fn: F) -> F:
    """``-A/--app``: the app, as ``pkg.module`` or ``pkg.module:attr``."""
    return click.option(
        "-A", "--app", "app_spec", default=None, help="The app: pkg.module or pkg.module:attr."
    )(fn)


def database_options(fn: F) -> F:
    """``-A/--app`` and ``--database-url``: where the system database is (one of them)."""
    fn = click.option("--database-url", default=None, help="System database URL (instead of -A).")(
        fn
    )
    return click.option(
        "-A", "--app", "app_spec", default=None, help="Take the database from this app."
    )(fn)


def json_option(fn: F) -> F:
    """``--json``: print machine-readable JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def resolve_app(ctx: click.Context, app_spec: str | None) -> Taskflow | None:
    """The app named by the command's ``-A`` or the group's, or None when neither was given."""
    spec = app_spec or (ctx.obj or {}).get("app_spec")
    if spec is None:
        return None
    try:
        return load_app(spec)
    except TaskflowError as exc:
        raise click.ClickException(str(exc)) from None


def required_app(ctx: click.Context, app_spec: str | None, loglevel: str) -> Taskflow:
    """For commands that run the app (``worker``, ``beat``): set the log level, then load the
    app, which must be given."""
    level = logging.getLevelName(loglevel.upper())
    if not isinstance(level, int):
        raise click.UsageError(f"unknown log level {loglevel!r}")
    logging.getLogger().setLevel(level)
    app = resolve_app(ctx, app_spec)
    if app is None:
        raise click.UsageError("give the app with -A/--app (pkg.module or pkg.module:attr)")
    return app


def database_conf(ctx: click.Context, app_spec: str | None, database_url: str | None) -> Config:
    """The configuration naming the system database: the app's, or one from a bare URL
    (else ``$TASKFLOW_DATABASE_URL``, else the embedded default)."""
    app = resolve_app(ctx, app_spec)
    if app is not None and database_url is not None:
        raise click.UsageError("give either -A/--app or --database-url, not both")
    return app.conf if app is not None else Config(database_url=database_url)


@contextmanager
def taskflow_errors() -> Iterator[None]:
    """Turn a :class:`TaskflowError` (bad input, unknown id, database down) into a one-line
    error and exit code 1."""
    try:
        yield
    except TaskflowError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def open_broker(
    ctx: click.Context, app_spec: str | None, database_url: str | None
) -> Iterator[Broker]:
    """A migrated broker on the command's database, closed afterwards; taskflow errors
    inside the block become one-line errors."""
    conf = database_conf(ctx, app_spec, database_url)
    with taskflow_errors():
        broker = create_broker(conf)
        try:
            broker.migrate()
            yield broker
        finally:
            broker.close()


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value) or "-"
    return str(value)


def _jsonable(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def table_lines(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> list[str]:
    """An aligned text table: a header of ``columns`` upper-cased, then one line per row,
    each column padded to its widest cell (None prints as ``-``)."""
    cells = [[c.upper() for c in columns]]
    cells += [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in cells
    ]


def emit(rows: Sequence[Mapping[str, object]], columns: Sequence[str], as_json: bool) -> None:
    """Print ``rows`` as a table for people or, with ``as_json``, as a JSON list of objects
    (every key of each row, datetimes as ISO 8601 strings)."""
    if as_json:
        click.echo(json.dumps([_jsonable(r) for r in rows], indent=2))
        return
    for line in table_lines(rows, columns):
        click.echo(line)


def emit_one(record: Mapping[str, object], as_json: bool) -> None:
    """Print one record as ``key: value`` lines, or as a JSON object."""
    if as_json:
        click.echo(json.dumps(_jsonable(record), indent=2))
        return
    width = max((len(k) for k in record), default=0)
    for key, value in record.items():
        click.echo(f"{key.ljust(width)}  {_cell(value)}")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)")
_UNITS = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``45s``, ``1w``, ``1d12h`` or plain seconds (``90``) as a
    positive :class:`timedelta`; anything else is a :class:`click.BadParameter` naming it."""
    raw = text.strip().lower()
    try:
        seconds = float(raw)
    except ValueError:
        pos = 0
        seconds = 0.0
        for match in _DURATION.finditer(raw):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise click.BadParameter(
                f"{text!r} is not a duration; use e.g. 7d, 12h, 30m, 45s, 1w or seconds"
            ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise click.BadParameter(f"{text!r}: the duration must be positive")
    return timedelta(seconds=seconds)


def duration_callback(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> timedelta | None:
    """A click ``callback=`` that parses an option with :func:`parse_duration`."""
    return None if value is None else parse_duration(value)


__all__ = [
    "app_option",
    "database_conf",
    "database_options",
    "duration_callback",
    "emit",
    "emit_one",
    "json_option",
    "open_broker",
    "parse_duration",
    "required_app",
    "resolve_app",
    "table_lines",
    "taskflow_errors",
]
