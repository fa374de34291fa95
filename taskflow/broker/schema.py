"""The system database schema, defined once for both dialects as SQLAlchemy metadata.

Each migration builds the tables it creates here, frozen at that version: a later change is a
new migration, never an edit of an applied one. ``tests/broker`` checks that a migrated
database holds exactly what these definitions describe, on Postgres and SQLite alike.

Timestamps are ``BIGINT`` milliseconds since the epoch on both dialects. Arguments, results
and errors are msgspec JSON text.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)

MIGRATIONS_TABLE = "schema_migrations"


def migrations_table(metadata: MetaData) -> Table:
    """The table recording which migrations ran."""
    return Table(
        MIGRATIONS_TABLE,
        metadata,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("name", Text, nullable=False),
        Column("applied_at", BigInteger, nullable=False),
    )


def v1_tables(metadata: MetaData) -> list[Table]:
    """Version 1: workflow status rows (which double as queue entries) and step outcomes."""
    workflows = Table(
        "workflows",
        metadata,
        Column("id", Text, primary_key=True),
        Column("name", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("queue", Text),
        # 0 = no priority, which runs before any 1..2^31-1 (lower first).
        Column("priority", Integer, nullable=False, server_default=text("0")),
        Column("partition_key", Text),
        Column("dedup_id", Text),
        Column("inputs", Text, nullable=False),
        Column("output", Text),
        Column("error", Text),
        Column("executor_id", Text),
        Column("app_version", Text),
        Column("user_name", Text),
        Column("parent_id", Text),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("created_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
        Column("started_at", BigInteger),
        Column("finished_at", BigInteger),
        Column("delay_until", BigInteger),
        Column("expires_at", BigInteger),
        Column("timeout_ms", BigInteger),
        Column("deadline_at", BigInteger),
    )
    Index(
        "ix_workflows_pending_executor",
        workflows.c.executor_id,
        postgresql_where=text("status = 'PENDING'"),
        sqlite_where=text("status = 'PENDING'"),
    )
    Index(
        "ix_workflows_runnable",
        workflows.c.queue,
        workflows.c.priority,
        workflows.c.created_at,
        postgresql_where=text("status = 'ENQUEUED'"),
        sqlite_where=text("status = 'ENQUEUED'"),
    )
    Index("ix_workflows_created_at", workflows.c.created_at)
    Index(
        "ix_workflows_parent",
        workflows.c.parent_id,
        postgresql_where=text("parent_id IS NOT NULL"),
        sqlite_where=text("parent_id IS NOT NULL"),
    )
    # No foreign key to workflows, on purpose: checking it locks the workflow row (FOR KEY
    # SHARE, a write) on every step checkpoint, which measurably slows the hot path. Steps
    # are written only by the executor that owns the workflow; retention deletes both.
    steps = Table(
        "steps",
        metadata,
        Column("workflow_id", Text, primary_key=True),
        Column("step_id", Integer, primary_key=True, autoincrement=False),
        Column("name", Text, nullable=False),
        Column("output", Text),
        Column("error", Text),
        Column("child_workflow_id", Text),
        Column("started_at", BigInteger),
        Column("finished_at", BigInteger),
    )
    return [workflows, steps]


def current_metadata(schema: str | None) -> MetaData:
    """Every table as the newest migration leaves it (used to check migrations)."""
    metadata = MetaData(schema=schema)
    migrations_table(metadata)
    v1_tables(metadata)
    return metadata


__all__ = ["MIGRATIONS_TABLE", "current_metadata", "migrations_table", "v1_tables"]
