"""Versioned schema migrations, compiled from :mod:`taskflow.broker.schema` per dialect.

Applying them is each broker's job (it holds the lock that makes ten processes starting at
once leave exactly one schema); this module only says *what* each version runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import MetaData, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable, DropIndex

from taskflow.broker.schema import (
    V2_DROPPED_INDEXES,
    migrations_table,
    upgrade_workflows_v2,
    v1_tables,
    v2_tables,
    v3_queue_columns,
    v3_tables,
    v3_workflow_indexes,
    v4_tables,
    v4_workflow_columns,
    v4_workflow_indexes,
    v5_tables,
    v6_message_indexes,
    v6_workflow_indexes,
    v7_executor_columns,
)


@dataclass(frozen=True)
class Migration:
    """One schema version: its number, a name, and the DDL that creates it."""

    version: int
    name: str
    build: Callable[[MetaData], list[str] | None]
    """Adds the version's new tables to the metadata (returning None), or returns raw
    statements."""
    alter: Callable[[str, str | None], list[str]] | None = None
    """Statements changing existing tables, per dialect: ``(dialect, schema) -> DDL``, run
    after the new tables are created."""


def _v1(metadata: MetaData) -> None:
    v1_tables(metadata)


def _v2(metadata: MetaData) -> None:
    v2_tables(metadata)


def _v2_alter(dialect_name: str, schema: str | None) -> list[str]:
    dialect = _dialect(dialect_name)
    workflows = v1_tables(MetaData(schema=schema))[0]
    dropped = [i for i in workflows.indexes if i.name in V2_DROPPED_INDEXES]
    columns, indexes = upgrade_workflows_v2(workflows, dialect_name)
    table = dialect.identifier_preparer.format_table(workflows)
    out = [
        f"ALTER TABLE {table} ADD COLUMN {str(CreateColumn(c).compile(dialect=dialect)).strip()}"
        for c in columns
    ]
    out += [str(DropIndex(i).compile(dialect=dialect)).strip() for i in dropped]
    out += [str(CreateIndex(i).compile(dialect=dialect)).strip() for i in indexes]
    return out


def _v3(metadata: MetaData) -> None:
    v3_tables(metadata)


def _v3_alter(dialect_name: str, schema: str | None) -> list[str]:
    dialect = _dialect(dialect_name)
    metadata = MetaData(schema=schema)
    workflows = v1_tables(metadata)[0]
    upgrade_workflows_v2(workflows, dialect_name)
    queues = v2_tables(metadata)[1]
    out = [
        f"ALTER TABLE {dialect.identifier_preparer.format_table(queues)} ADD COLUMN "
        f"{str(CreateColumn(c).compile(dialect=dialect)).strip()}"
        for c in v3_queue_columns()
    ]
    indexes = v3_workflow_indexes(workflows, dialect_name)
    out += [str(CreateIndex(i).compile(dialect=dialect)).strip() for i in indexes]
    return out


def _v4(_metadata: MetaData) -> list[str]:
    # The message table's key differs per dialect, so its tables are built in _v4_alter.
    return []


def _v4_alter(dialect_name: str, schema: str | None) -> list[str]:
    dialect = _dialect(dialect_name)
    tables = MetaData(schema=schema)
    v4_tables(tables, dialect_name)
    out = _compile_tables(tables, dialect)
    workflows = v1_tables(MetaData(schema=schema))[0]
    upgrade_workflows_v2(workflows, dialect_name)
    table = dialect.identifier_preparer.format_table(workflows)
    columns = v4_workflow_columns()
    out += [
        f"ALTER TABLE {table} ADD COLUMN {str(CreateColumn(c).compile(dialect=dialect)).strip()}"
        for c in columns
    ]
    for column in columns:
        workflows.append_column(column)
    indexes = v4_workflow_indexes(workflows)
    out += [str(CreateIndex(i).compile(dialect=dialect)).strip() for i in indexes]
    return out


def _v5(metadata: MetaData) -> None:
    v5_tables(metadata)


def _v6(_metadata: MetaData) -> list[str]:
    # Indexes only, on an existing table: built in _v6_alter.
    return []


def _v6_alter(dialect_name: str, schema: str | None) -> list[str]:
    dialect = _dialect(dialect_name)
    workflows = v1_tables(MetaData(schema=schema))[0]
    upgrade_workflows_v2(workflows, dialect_name)
    # IF NOT EXISTS: on a large table a DBA may build them CONCURRENTLY beforehand (a plain
    # CREATE INDEX blocks writes to the table while it runs).
    tables = v4_tables(MetaData(schema=schema), dialect_name)
    messages = next(t for t in tables if t.name == "messages")
    indexes = v6_workflow_indexes(workflows) + v6_message_indexes(messages)
    return [
        str(CreateIndex(i, if_not_exists=True).compile(dialect=dialect)).strip() for i in indexes
    ]


def _v7(_metadata: MetaData) -> list[str]:
    # Columns only, on an existing table: added in _v7_alter.
    return []


def _v7_alter(dialect_name: str, schema: str | None) -> list[str]:
    dialect = _dialect(dialect_name)
    executors = v2_tables(MetaData(schema=schema))[0]
    table = dialect.identifier_preparer.format_table(executors)
    return [
        f"ALTER TABLE {table} ADD COLUMN {str(CreateColumn(c).compile(dialect=dialect)).strip()}"
        for c in v7_executor_columns()
    ]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "workflows and steps", _v1),
    Migration(2, "queues, dedup, delays and executor heartbeats", _v2, _v2_alter),
    Migration(3, "queue flow control, app versions and timeouts", _v3, _v3_alter),
    Migration(4, "messages, events, streams, debouncers and parked waits", _v4, _v4_alter),
    Migration(5, "schedules and beat leadership", _v5),
    Migration(6, "indexes for listing workflows and for retention", _v6, _v6_alter),
    Migration(7, "executor pools and registered workflows", _v7, _v7_alter),
)
"""Every migration, oldest first. Append only."""

LATEST_VERSION = MIGRATIONS[-1].version


def _dialect(name: str) -> Dialect:
    if name == "postgresql":
        return postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    return sqlite.dialect()


def _create_table(table: Table, dialect: Dialect) -> str:
    statement = str(CreateTable(table).compile(dialect=dialect)).strip()
    if dialect.name == "postgresql" and table.info.get("unlogged"):
        # SQLAlchemy has no per-dialect UNLOGGED; tables ask for it through their info.
        statement = statement.replace("CREATE TABLE", "CREATE UNLOGGED TABLE", 1)
    return statement


def _compile_tables(metadata: MetaData, dialect: Dialect) -> list[str]:
    out: list[str] = []
    for table in metadata.sorted_tables:
        out.append(_create_table(table, dialect))
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
    out = raw if raw is not None else _compile_tables(metadata, _dialect(dialect_name))
    if migration.alter is not None:
        out = out + migration.alter(dialect_name, schema)
    return out


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
