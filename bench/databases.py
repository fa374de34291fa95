"""Scratch databases: a new Postgres database or a SQLite file in a temporary folder,
created for one suite and removed afterwards, whatever happens."""

from __future__ import annotations

import secrets
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bench.common import BenchError, Options, progress


@dataclass(frozen=True)
class ScratchDatabase:
    """A database that exists for the duration of a ``with scratch_database(...)`` block."""

    dialect: str
    """``"postgres"`` or ``"sqlite"``."""
    url: str
    """The URL to give ``Taskflow(database_url=...)``."""


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BenchError(f"cannot parse Postgres URL {url!r}: {exc}") from None
    if not parsed.drivername.startswith("postgres"):
        raise BenchError(f"not a Postgres URL: {parsed.render_as_string(hide_password=True)}")
    return parsed


def libpq_url(url: str, database: str | None = None) -> str:
    """``url`` as psycopg accepts it (no SQLAlchemy driver suffix), optionally pointed at
    another database on the same server."""
    parsed = _parse(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """``url`` without its password, for messages and the report."""
    return _parse(url).render_as_string(hide_password=True)


def admin_connection(admin_url: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the server, or a :class:`BenchError` saying why not."""
    try:
        return psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchError(
            f"cannot reach PostgreSQL at {redacted(admin_url)}: {reason}\n"
            "Start it, point --postgres-url (or $TASKFLOW_BENCH_POSTGRES_URL) at one, "
            "or run --dialect sqlite."
        ) from None


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[ScratchDatabase]:
    """Create ``taskflow_bench_<random>`` on the server; drop it (forcibly) afterwards."""
    name = f"taskflow_bench_{secrets.token_hex(4)}"
    with admin_connection(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    progress(f"postgres: created scratch database {name}")
    try:
        yield ScratchDatabase("postgres", libpq_url(admin_url, name))
    finally:
        with admin_connection(admin_url) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        progress(f"postgres: dropped scratch database {name}")


@contextmanager
def scratch_sqlite() -> Iterator[ScratchDatabase]:
    """A SQLite file in a new temporary folder, deleted with the folder afterwards."""
    with tempfile.TemporaryDirectory(prefix="taskflow_bench_") as folder:
        path = Path(folder) / "bench.sqlite3"
        progress(f"sqlite: scratch file {path}")
        yield ScratchDatabase("sqlite", f"sqlite:///{path}")


@contextmanager
def scratch_database(dialect: str, options: Options) -> Iterator[ScratchDatabase]:
    """A fresh, empty database of ``dialect``, removed when the block ends."""
    if dialect == "postgres":
        with scratch_postgres(options.postgres_url) as db:
            yield db
    elif dialect == "sqlite":
        with scratch_sqlite() as db:
            yield db
    else:
        raise BenchError(f"unknown dialect {dialect!r}")


def sqlite_path(db: ScratchDatabase) -> str:
    """The file behind a SQLite scratch database."""
    return db.url.removeprefix("sqlite:///")


def sqlite_connect(db: ScratchDatabase, synchronous: str) -> sqlite3.Connection:
    """An autocommit connection set up as taskflow sets up its own (WAL, ``synchronous``)."""
    conn = sqlite3.connect(sqlite_path(db), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


def postgres_settings(admin_url: str) -> dict[str, str]:
    """Server version and the settings that decide what a commit costs."""
    names = ("server_version", "synchronous_commit", "fsync", "wal_sync_method")
    with admin_connection(admin_url) as conn:
        return {name: str(_show(conn, name)) for name in names}


def _show(conn: psycopg.Connection[Any], name: str) -> object:
    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
    return row[0] if row else "?"
