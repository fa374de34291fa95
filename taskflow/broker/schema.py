"""The system database schema, defined once for both dialects as SQLAlchemy metadata.

Each migration builds the tables it creates here, frozen at that version: a later change is a
new migration, never an edit of an applied one. ``tests/broker`` checks that a migrated
database holds exactly what these definitions describe, on Postgres and SQLite alike.

Timestamps are ``BIGINT`` milliseconds since the epoch on both dialects. Arguments, results
and errors are msgspec JSON text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Identity,
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


RUNNABLE = ("ENQUEUED", "DELAYED", "PENDING")
"""Statuses that hold a dedup key."""


def v2_tables(metadata: MetaData) -> list[Table]:
    """Version 2, new tables: executor heartbeats and the registry of known queues."""
    # Heartbeats are rewritten every few seconds and worthless after a crash of the server
    # (every executor beats again), so on Postgres the table is UNLOGGED: no WAL, no fsync.
    # Never indexed per job: one row per executor.
    executors = Table(
        "executors",
        metadata,
        Column("executor_id", Text, primary_key=True),
        Column("kind", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("hostname", Text, nullable=False),
        Column("pid", Integer, nullable=False),
        Column("app_version", Text),
        Column("queues", Text, nullable=False),  # JSON list of names
        Column("concurrency", Integer, nullable=False),
        Column("started_at", BigInteger, nullable=False),
        Column("heartbeat_at", BigInteger, nullable=False),
        info={"unlogged": True},
    )
    # One row per queue; later versions add per-queue settings (flow control) here.
    queues = Table(
        "queues",
        metadata,
        Column("name", Text, primary_key=True),
        Column("updated_at", BigInteger, nullable=False),
    )
    return [executors, queues]


V2_DROPPED_INDEXES = ("ix_workflows_runnable",)
"""Version 1 indexes that version 2 replaces."""


def v2_workflow_columns(dialect: str) -> list[Column[Any]]:
    """Version 2, columns added to ``workflows`` (in this order, at the end)."""
    columns: list[Column[Any]] = [
        Column("retries", Integer, nullable=False, server_default=text("0")),
    ]
    if dialect == "postgresql":
        # Insertion order, for FIFO within one millisecond (SQLite uses the implicit rowid).
        columns.append(Column("seq", BigInteger, Identity(always=True), nullable=False))
    return columns


def v2_workflow_indexes(workflows: Table, dialect: str) -> list[Index]:
    """Version 2, indexes of ``workflows`` (the table must already hold the v2 columns)."""
    c = workflows.c
    # The claim order: priority, then FIFO. On SQLite every index ends with the rowid, which
    # breaks ties within one millisecond; on Postgres the seq column does.
    order = [c.priority, c.created_at] + ([c.seq] if dialect == "postgresql" else [])
    enqueued = text("status = 'ENQUEUED'")
    holding = text(
        "dedup_id IS NOT NULL AND status IN (" + ", ".join(f"'{s}'" for s in RUNNABLE) + ")"
    )
    delayed = text("status = 'DELAYED'")
    expiring = text("expires_at IS NOT NULL AND status IN ('ENQUEUED', 'DELAYED')")
    return [
        Index("ix_workflows_claim", *order, postgresql_where=enqueued, sqlite_where=enqueued),
        Index(
            "ux_workflows_dedup",
            c.queue,
            c.dedup_id,
            unique=True,
            postgresql_where=holding,
            sqlite_where=holding,
        ),
        Index(
            "ix_workflows_delayed", c.delay_until, postgresql_where=delayed, sqlite_where=delayed
        ),
        Index(
            "ix_workflows_expires",
            c.expires_at,
            postgresql_where=expiring,
            sqlite_where=expiring,
        ),
    ]


def upgrade_workflows_v2(workflows: Table, dialect: str) -> tuple[list[Column[Any]], list[Index]]:
    """Turn a version 1 ``workflows`` table object into its version 2 shape; return what was
    added (columns, indexes)."""
    for index in list(workflows.indexes):
        if index.name in V2_DROPPED_INDEXES:
            workflows.indexes.discard(index)
    columns = v2_workflow_columns(dialect)
    for column in columns:
        workflows.append_column(column)
    return columns, v2_workflow_indexes(workflows, dialect)


def v3_tables(metadata: MetaData) -> list[Table]:
    """Version 3, new tables: application versions and the start log of rate-limited queues."""
    # Which app versions have run, and when each became the newest: when two versions
    # declare a queue differently, the newest one's limits win.
    app_versions = Table(
        "app_versions",
        metadata,
        Column("version", Text, primary_key=True),
        Column("version_at", BigInteger, nullable=False),
        Column("created_at", BigInteger, nullable=False),
    )
    # One row per start of a workflow on a rate-limited queue (partition '' when the queue is
    # not partitioned): a sliding window counts the rows younger than the period. Rows older
    # than the period are pruned by queue maintenance.
    queue_starts = Table(
        "queue_starts",
        metadata,
        Column("queue", Text, nullable=False),
        Column("partition_key", Text, nullable=False),
        Column("started_at", BigInteger, nullable=False),
    )
    Index(
        "ix_queue_starts_window",
        queue_starts.c.queue,
        queue_starts.c.partition_key,
        queue_starts.c.started_at,
    )
    return [app_versions, queue_starts]


def v3_queue_columns() -> list[Column[Any]]:
    """Version 3, columns added to ``queues``: the limits in force and who declared them."""
    return [
        Column("concurrency", Integer),
        Column("worker_concurrency", Integer),
        Column("rate_count", Integer),
        Column("rate_per_ms", BigInteger),
        Column("partitioned", Integer, nullable=False, server_default=text("0")),
        Column("app_version", Text),
        Column("declared_at", BigInteger),
    ]


def v3_workflow_indexes(workflows: Table, dialect: str) -> list[Index]:
    """Version 3, indexes of ``workflows`` serving claims on limited queues and timeouts."""
    c = workflows.c
    tail = [c.priority, c.created_at] + ([c.seq] if dialect == "postgresql" else [])
    # Every ENQUEUED row is in exactly one of the two claim indexes: one more index entry
    # per enqueue, whatever the queue.
    unkeyed = text("status = 'ENQUEUED' AND partition_key IS NULL")
    keyed = text("status = 'ENQUEUED' AND partition_key IS NOT NULL")
    pending = text("status = 'PENDING'")
    timed = text("status = 'PENDING' AND deadline_at IS NOT NULL")
    return [
        Index(
            "ix_workflows_queue_claim",
            c.queue,
            *tail,
            postgresql_where=unkeyed,
            sqlite_where=unkeyed,
        ),
        Index(
            "ix_workflows_partition_claim",
            c.queue,
            c.partition_key,
            *tail,
            postgresql_where=keyed,
            sqlite_where=keyed,
        ),
        # Running work per queue and partition (the concurrency limits count it).
        Index(
            "ix_workflows_running",
            c.queue,
            c.partition_key,
            c.executor_id,
            postgresql_where=pending,
            sqlite_where=pending,
        ),
        Index("ix_workflows_deadline", c.deadline_at, postgresql_where=timed, sqlite_where=timed),
    ]


def v4_tables(metadata: MetaData, dialect: str) -> list[Table]:
    """Version 4, new tables: messages, events, streams and debouncers of durable workflows."""
    # seq orders messages per (destination, topic): send order is delivery order. On SQLite
    # an INTEGER PRIMARY KEY is the rowid, which only grows.
    seq = (
        Column("seq", BigInteger, Identity(always=True), primary_key=True)
        if dialect == "postgresql"
        else Column("seq", Integer, primary_key=True)
    )
    messages = Table(
        "messages",
        metadata,
        seq,
        Column("destination_id", Text, nullable=False),
        # '' is "no topic": recv() without a topic reads only those.
        Column("topic", Text, nullable=False),
        Column("message", Text, nullable=False),
        # A workflow's send carries its id and step, an outside send its idempotency key: a
        # repeated send writes nothing, also after the first was received.
        Column("send_key", Text),
        Column("created_at", BigInteger, nullable=False),
        # Set when received. Received messages stay (until retention removes them with
        # their workflow), so that their send_key still refuses a repeat.
        Column("consumed_at", BigInteger),
    )
    unread = text("consumed_at IS NULL")
    Index(
        "ix_messages_inbox",
        messages.c.destination_id,
        messages.c.topic,
        messages.c.seq,
        postgresql_where=unread,
        sqlite_where=unread,
    )
    keyed = text("send_key IS NOT NULL")
    Index(
        "ux_messages_send_key",
        messages.c.send_key,
        unique=True,
        postgresql_where=keyed,
        sqlite_where=keyed,
    )
    # The latest value of each key a workflow published.
    events = Table(
        "events",
        metadata,
        Column("workflow_id", Text, primary_key=True),
        Column("key", Text, primary_key=True),
        Column("value", Text, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
    )
    # Append-only streams: offset 0, 1, 2... per (workflow, key); a row with a NULL value
    # closes the stream.
    streams = Table(
        "streams",
        metadata,
        Column("workflow_id", Text, primary_key=True),
        Column("key", Text, primary_key=True),
        Column("offset", Integer, primary_key=True, autoincrement=False),
        Column("value", Text),
        Column("written_at", BigInteger, nullable=False),
    )
    # The workflow each debounce key currently pushes back, and when its first call came.
    debounces = Table(
        "debounces",
        metadata,
        Column("workflow_name", Text, primary_key=True),
        Column("debounce_key", Text, primary_key=True),
        Column("workflow_id", Text, nullable=False),
        Column("first_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
    )
    return [messages, events, streams, debounces]


def v4_workflow_columns() -> list[Column[Any]]:
    """Version 4, columns added to ``workflows``: what a parked workflow waits for.

    A workflow that waits longer than the park threshold is DELAYED with ``wait_kind`` set
    ('sleep', 'recv', 'event', 'child'), ``wait_on`` the workflow it waits on (event, child)
    and ``wait_key`` the topic or event key; whatever it waits for wakes it early."""
    return [
        Column("wait_kind", Text),
        Column("wait_on", Text),
        Column("wait_key", Text),
    ]


def v4_workflow_indexes(workflows: Table) -> list[Index]:
    """Version 4, indexes of ``workflows`` (the table must hold the v4 columns)."""
    c = workflows.c
    waiting = text("status = 'DELAYED' AND wait_on IS NOT NULL")
    parked = text("status = 'DELAYED' AND deadline_at IS NOT NULL")
    return [
        # Who waits on a workflow's event or result: probed when it publishes or finishes.
        Index("ix_workflows_waiting", c.wait_on, postgresql_where=waiting, sqlite_where=waiting),
        # Parked or retrying workflows past their durable timeout are cancelled too.
        Index(
            "ix_workflows_parked_deadline",
            c.deadline_at,
            postgresql_where=parked,
            sqlite_where=parked,
        ),
    ]


def v5_tables(metadata: MetaData) -> list[Table]:
    """Version 5, new tables: schedules and the leadership of the beat that fires them."""
    # BOOLEAN on Postgres; INTEGER 0/1 on SQLite, which has no boolean type. 'false' is a
    # default both accept.
    flag = Boolean().with_variant(Integer(), "sqlite")
    schedules = Table(
        "schedules",
        metadata,
        Column("name", Text, primary_key=True),
        Column("workflow_name", Text, nullable=False),
        # A cron string or "@every N", validated above the broker.
        Column("expression", Text, nullable=False),
        Column("tz", Text, nullable=False),
        Column("context", Text, nullable=False),
        # JSON {"args": [...], "kwargs": {...}} of a Celery beat_schedule entry; NULL: the
        # workflow is called with (scheduled_at, context).
        Column("inputs", Text),
        Column("backfill", flag, nullable=False, server_default=text("false")),
        Column("queue", Text),
        Column("priority", Integer),
        Column("options", Text, nullable=False, server_default=text("'{}'")),
        # 'code' (declared in an app: removed with the declaration) or 'api'.
        Column("source", Text, nullable=False),
        Column("paused", flag, nullable=False, server_default=text("false")),
        # The next scheduled time not fired yet; firing moves it, guarded by its old value.
        Column("next_fire_at", BigInteger, nullable=False),
        Column("last_fired_at", BigInteger),
        Column("created_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
    )
    active = text("NOT paused")
    Index(
        "ix_schedules_due",
        schedules.c.next_fire_at,
        postgresql_where=active,
        sqlite_where=active,
    )
    # One row per beat group (only 'beat' for now). ``term`` grows with every change of
    # holder: a fire carries the term it was decided under, so a beat that lost the lease
    # (paused for longer than it) can never fire after its successor took over.
    beat_leader = Table(
        "beat_leader",
        metadata,
        Column("name", Text, primary_key=True),
        Column("holder", Text),
        Column("term", BigInteger, nullable=False, server_default=text("0")),
        Column("lease_until", BigInteger, nullable=False, server_default=text("0")),
        Column("renewed_at", BigInteger),
    )
    return [schedules, beat_leader]


def v6_workflow_indexes(workflows: Table) -> list[Index]:
    """Version 6, indexes of ``workflows`` serving ``list_workflows`` and retention.

    Each listing filter leads an index that ends with ``created_at``, so a filtered page,
    newest or oldest first, reads its rows in order and stops after the page (chosen with
    EXPLAIN on 1,000,000 rows: see docs/benchmarks.md). Kept to one index per filter: every
    index costs each enqueue and status change a little."""
    c = workflows.c
    # A filter never matches NULL: rows without the value (no user; no queue for a direct
    # run; no version for enqueued work not started yet) stay out of those indexes, which
    # spares their writes.
    queued = text("queue IS NOT NULL")
    named = text("user_name IS NOT NULL")
    versioned = text("app_version IS NOT NULL")
    finished = text("finished_at IS NOT NULL")
    return [
        Index("ix_workflows_status_created", c.status, c.created_at),
        Index("ix_workflows_name_created", c.name, c.created_at),
        Index(
            "ix_workflows_queue_created",
            c.queue,
            c.created_at,
            postgresql_where=queued,
            sqlite_where=queued,
        ),
        Index(
            "ix_workflows_user_created",
            c.user_name,
            c.created_at,
            postgresql_where=named,
            sqlite_where=named,
        ),
        Index(
            "ix_workflows_version_created",
            c.app_version,
            c.created_at,
            postgresql_where=versioned,
            sqlite_where=versioned,
        ),
        # Retention deletes finished workflows oldest first.
        Index(
            "ix_workflows_finished",
            c.finished_at,
            postgresql_where=finished,
            sqlite_where=finished,
        ),
    ]


def v6_message_indexes(messages: Table) -> list[Index]:
    """Version 6, an index of ``messages`` by destination: retention deletes a pruned
    workflow's messages, read ones included, which the inbox index (unread only) cannot
    find."""
    return [Index("ix_messages_destination", messages.c.destination_id)]


def v7_executor_columns() -> list[Column[Any]]:
    """Version 7, columns added to ``executors``: what ``taskflow inspect`` shows of a
    worker besides its heartbeat."""
    return [
        # 'prefork', 'threads' or 'solo'; NULL for a process running workflows directly.
        Column("pool", Text),
        # JSON list of the workflow names the worker's app registers; NULL: not recorded.
        Column("workflows", Text),
    ]


def current_metadata(schema: str | None, dialect: str | None = None) -> MetaData:
    """Every table as the newest migration leaves it (used to check migrations). The dialect
    defaults to Postgres when a schema is given, else SQLite."""
    dialect = dialect or ("postgresql" if schema is not None else "sqlite")
    metadata = MetaData(schema=schema)
    migrations_table(metadata)
    workflows, _steps = v1_tables(metadata)
    upgrade_workflows_v2(workflows, dialect)
    executors, queues = v2_tables(metadata)
    for column in v3_queue_columns():
        queues.append_column(column)
    v3_tables(metadata)
    v3_workflow_indexes(workflows, dialect)  # indexes attach themselves to their table
    messages = v4_tables(metadata, dialect)[0]
    for column in v4_workflow_columns():
        workflows.append_column(column)
    v4_workflow_indexes(workflows)
    v5_tables(metadata)
    v6_workflow_indexes(workflows)
    v6_message_indexes(messages)
    for column in v7_executor_columns():
        executors.append_column(column)
    return metadata


__all__ = [
    "MIGRATIONS_TABLE",
    "RUNNABLE",
    "V2_DROPPED_INDEXES",
    "current_metadata",
    "migrations_table",
    "upgrade_workflows_v2",
    "v1_tables",
    "v2_tables",
    "v2_workflow_columns",
    "v2_workflow_indexes",
    "v3_queue_columns",
    "v3_tables",
    "v3_workflow_indexes",
    "v4_tables",
    "v4_workflow_columns",
    "v4_workflow_indexes",
    "v5_tables",
    "v6_message_indexes",
    "v6_workflow_indexes",
    "v7_executor_columns",
]
