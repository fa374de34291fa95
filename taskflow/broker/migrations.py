"""Versioned schema migrations, compiled from :mod:`taskflow.broker.schema` per dialect.

Applying them is each broker's job (it holds the lock that makes ten processes starting at
once leave exactly one schema); this module only says *what* each version runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from taskflow.broker.schema import migrations_table, v1_tables


@dataclass(frozen=True)
class Migration:
    """One schema version: its number, a name, and the DDL that creates it."""

    version: int
    name: str
    build: Callable[[MetaData], list[str] | None]
    """Adds the version's tables to the metadata (returning None), or returns raw statements."""


def _v1(metadata: MetaData) -> None:
    v1_tables(metadata)


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "workflows and steps", _v1),)
"""Every migration, oldest first. Append only."""

LATEST_VERSION = MIGRATIONS[-1].version


def _dialect(name: str) -> Dialect:
    if name == "postgresql":
        return postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    return sqlite.dialect()


def _compile_tables(metadata: MetaData, dialect: Dialect) -> list[str]:
    out: list[str] = []
    for table in metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            out.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    return out


def bootstrap_statements(dialect_name: str, schema: str | None) -> list[str]:
    """What must exist before any migration: the schema (Postgres) and the version table."""
    dialect = _dialect(dialect_name)
    metadata = MetaData(schema=schema)
    table = migrations_table(metadata)
    create = str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)).strip()
    if dialect_name == "postgresql" and schema:
        return [f'CREATE SCHEMA IF NOT EXISTS "{schema}"', create]
    return [create]


def migration_statements(migration: Migration, dialect_name: str, schema: str | None) -> list[str]:
    """The DDL of one migration for one dialect."""
    metadata = MetaData(schema=schema)
    raw = migration.build(metadata)
    if raw is not None:
        return raw
    return _compile_tables(metadata, _dialect(dialect_name))


def pending(current_version: int) -> list[Migration]:
    """Migrations newer than ``current_version``."""
    return [m for m in MIGRATIONS if m.version > current_version]


__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "Migration",
    "bootstrap_statements",
    "migration_statements",
    "pending",
]
