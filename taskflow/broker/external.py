"""Connections taskflow does not own: a producer's own transaction (``enqueue_on``).

Accepted: a psycopg 3 connection, a sqlite3 connection, or a SQLAlchemy ``Connection`` /
``Session`` over either driver. The SQLAlchemy ORM is imported only when such an object is passed.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
from sqlalchemy.engine import Connection

from taskflow.errors import ConfigurationError

_ACCEPTED = (
    "a psycopg connection, a sqlite3 connection, or a SQLAlchemy Connection or Session "
    "(over psycopg or sqlite3)"
)


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _unwrap_sqlalchemy(connection: object) -> object:
    """The DBAPI connection under a SQLAlchemy Session or Connection (else ``connection``),
    inside a SQLAlchemy transaction, so that the caller's ``commit()`` commits our rows."""
    module = type(connection).__module__
    if not module.startswith("sqlalchemy."):
        return connection
    # The ORM is heavy to import and only a Session needs it.
    from sqlalchemy.orm import Session, scoped_session  # noqa: PLC0415

    if isinstance(connection, Session | scoped_session):
        connection = connection.connection()
    if isinstance(connection, Connection):
        if not connection.in_transaction():
            # Without a SQLAlchemy transaction, its commit() would be a no-op and our
            # statements (in the driver's implicit transaction) would roll back on close.
            connection.begin()
        driver: object = connection.connection.driver_connection
        return driver
    return connection


def driver_connection(connection: object) -> psycopg.Connection[Any] | sqlite3.Connection:
    """The driver connection to run on, or :class:`ConfigurationError` naming the type."""
    raw = _unwrap_sqlalchemy(connection)
    if isinstance(raw, psycopg.Connection | sqlite3.Connection):
        return raw
    got = _type_name(connection)
    if raw is not connection:
        got += f" over {_type_name(raw)}"
    raise ConfigurationError(f"connection= must be {_ACCEPTED}; got {got}")


def postgres_connection(connection: object) -> psycopg.Connection[Any]:
    """``connection`` as a psycopg connection, or :class:`ConfigurationError`."""
    raw = driver_connection(connection)
    if not isinstance(raw, psycopg.Connection):
        raise ConfigurationError(
            f"connection= is a SQLite connection ({_type_name(connection)}) but the system "
            "database is PostgreSQL: enqueue on a connection to the same database"
        )
    return raw


def sqlite_connection(connection: object) -> sqlite3.Connection:
    """``connection`` as a sqlite3 connection, or :class:`ConfigurationError`."""
    raw = driver_connection(connection)
    if not isinstance(raw, sqlite3.Connection):
        raise ConfigurationError(
            f"connection= is a PostgreSQL connection ({_type_name(connection)}) but the "
            "system database is SQLite: enqueue on a connection to the same database"
        )
    return raw


__all__ = ["driver_connection", "postgres_connection", "sqlite_connection"]
