"""Migrations: idempotent, versioned, and leaving exactly the schema the metadata describes."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from taskflow.broker import Broker, create_broker
from taskflow.broker.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    bootstrap_statements,
    migration_statements,
)
from taskflow.broker.schema import MIGRATIONS_TABLE, current_metadata
from taskflow.config import Config
from taskflow.errors import ConfigurationError, DatabaseConnectionError
from taskflow.models import NewWorkflow
from taskflow.status import Status

NOW = 1_700_000_000_000


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


@contextmanager
def opened(url: str, schema: str = "taskflow") -> Iterator[Broker]:
    b = create_broker(Config(database_url=url, database_schema=schema))
    try:
        yield b
    finally:
        b.close()


@contextmanager
def inspector(url: str) -> Iterator[sa.Inspector]:
    """A SQLAlchemy inspector on the test database."""
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(sa_url, poolclass=sa.pool.NullPool)
    try:
        yield sa.inspect(engine)
    finally:
        engine.dispose()


def migration_rows(url: str, schema: str = "taskflow") -> list[tuple[Any, ...]]:
    """Every (version, name) row of the migrations table, in version order."""
    if is_postgres(url):
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute(
                f'SELECT version, name FROM "{schema}".{MIGRATIONS_TABLE} ORDER BY version'
            ).fetchall()
    lite = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return lite.execute(
            f"SELECT version, name FROM {MIGRATIONS_TABLE} ORDER BY version"
        ).fetchall()
    finally:
        lite.close()


def _where(clause: object) -> str:
    """A partial index predicate, normalized across dialects' reflection: Postgres gives
    back ``(status = ANY (ARRAY['A'::text, 'B'::text]))`` for ``status IN ('A', 'B')`` and
    adds parentheses around every comparison."""
    text = str(clause).lower().replace("::text", "")
    text = re.sub(r"(\w+) in \(([^()]*)\)", r"\1 = any array[\2]", text)
    text = text.replace("(", " ").replace(")", " ")
    return re.sub(r"\s+", " ", text).strip()


def _index_where(options: Any, dialect: str) -> str | None:
    key = "postgresql_where" if dialect == "postgresql" else "sqlite_where"
    value = options.get(key) if isinstance(options, dict) else None
    return None if value is None else _where(value)


def _expected_where(index: sa.Index, dialect: str) -> str | None:
    value = index.dialect_options[dialect].get("where")
    return None if value is None else _where(value)


def _default(value: object) -> str:
    """A server default, normalized across dialects' reflection: Postgres gives back
    ``'{}'::text`` for ``'{}'``, SQLite ``'{}'``, and either may add parentheses."""
    return str(value).replace("::text", "").strip("'()")


def assert_schema_matches_metadata(url: str, schema: str = "taskflow") -> None:
    dialect = "postgresql" if is_postgres(url) else "sqlite"
    db_schema = schema if dialect == "postgresql" else None
    metadata = current_metadata(db_schema, dialect)
    with inspector(url) as insp:
        tables = set(insp.get_table_names(schema=db_schema))
        assert tables == {t.name for t in metadata.tables.values()}
        for table in metadata.tables.values():
            name = table.name
            columns = {c["name"]: c for c in insp.get_columns(name, schema=db_schema)}
            assert list(columns) == [c.name for c in table.columns], name
            for col in table.columns:
                got = columns[col.name]
                where = f"{name}.{col.name}"
                expected_type = col.type.compile(dialect=insp.dialect)
                assert got["type"].compile(dialect=insp.dialect) == expected_type, where
                assert got["nullable"] == col.nullable, where
                default = col.server_default
                expected_default = (
                    _default(default.arg) if isinstance(default, sa.DefaultClause) else None
                )
                got_default = got["default"]
                if got_default is not None:
                    got_default = _default(got_default)
                assert got_default == expected_default, where
                # An identity column (Postgres' seq) is filled by the server, in order.
                identity = got.get("identity")
                if col.identity is None:
                    assert identity is None, where
                else:
                    assert identity is not None, where
                    assert identity["always"] == col.identity.always, where

            pk = insp.get_pk_constraint(name, schema=db_schema)
            assert pk["constrained_columns"] == [c.name for c in table.primary_key.columns], name

            got_fks = {
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in insp.get_foreign_keys(name, schema=db_schema)
            }
            expected_fks = {
                (
                    tuple(c.name for c in fk.columns),
                    fk.referred_table.name,
                    tuple(e.column.name for e in fk.elements),
                )
                for fk in table.foreign_key_constraints
            }
            assert got_fks == expected_fks, name

            got_indexes = {
                ix["name"]: (
                    tuple(ix["column_names"]),
                    bool(ix["unique"]),
                    _index_where(ix.get("dialect_options", {}), dialect),
                )
                for ix in insp.get_indexes(name, schema=db_schema)
            }
            expected_indexes = {
                ix.name: (
                    tuple(c.name for c in ix.columns),
                    bool(ix.unique),
                    _expected_where(ix, dialect),
                )
                for ix in table.indexes
            }
            assert got_indexes == expected_indexes, name

    if dialect == "postgresql":
        # Heartbeats are UNLOGGED (no WAL), every other table is durable.
        persistence = table_persistence(url, schema)
        assert persistence == {
            t.name: "u" if t.info.get("unlogged") else "p" for t in metadata.tables.values()
        }


def table_persistence(url: str, schema: str) -> dict[str, str]:
    """``relpersistence`` of every table of a Postgres schema (p: logged, u: unlogged)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, c.relpersistence FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,),
        ).fetchall()
    return {name: str(p) for name, p in rows}


# -- versions ----------------------------------------------------------------------------


def test_schema_version_is_zero_on_an_empty_database(empty_database_url: str) -> None:
    with opened(empty_database_url) as b:
        assert b.schema_version() == 0
        # Asking does not create anything.
        assert b.schema_version() == 0
    if is_postgres(empty_database_url):
        with psycopg.connect(empty_database_url, autocommit=True) as conn:
            row = conn.execute("SELECT to_regnamespace('taskflow')").fetchone()
        assert row == (None,)


def test_migrate_twice_applies_once(empty_database_url: str) -> None:
    with opened(empty_database_url) as b:
        assert b.migrate() == len(MIGRATIONS)
        assert b.schema_version() == LATEST_VERSION
        assert b.migrate() == 0
    with opened(empty_database_url) as b:  # a new process sees it too
        assert b.schema_version() == LATEST_VERSION
        assert b.migrate() == 0
    assert migration_rows(empty_database_url) == [(m.version, m.name) for m in MIGRATIONS]


def test_migrate_on_a_migrated_database_is_a_no_op(broker: Broker, database_url: str) -> None:
    assert broker.schema_version() == LATEST_VERSION
    broker.start_workflow(
        NewWorkflow(id="kept", name="n", status=Status.ENQUEUED, inputs="{}", created_at=NOW), NOW
    )
    assert broker.migrate() == 0
    assert broker.get_status("kept") is Status.ENQUEUED
    assert migration_rows(database_url) == [(m.version, m.name) for m in MIGRATIONS]


def test_migration_versions_are_increasing() -> None:
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(set(versions))
    assert versions[0] == 1
    assert versions[-1] == LATEST_VERSION


# -- the schema itself -------------------------------------------------------------------


def test_migrated_schema_matches_metadata(empty_database_url: str) -> None:
    with opened(empty_database_url) as b:
        b.migrate()
    assert_schema_matches_metadata(empty_database_url)


def test_template_schema_matches_metadata(broker: Broker, database_url: str) -> None:
    # The databases every other test uses (Postgres: cloned from a template) hold it too.
    assert broker.schema_version() == LATEST_VERSION
    assert_schema_matches_metadata(database_url)


# -- the Postgres schema name ----------------------------------------------------------------


def test_postgres_schema_name_is_configurable(empty_postgres_url: str) -> None:
    with opened(empty_postgres_url, schema="other") as b:
        assert b.migrate() == len(MIGRATIONS)
        b.start_workflow(
            NewWorkflow(id="in-other", name="n", status=Status.ENQUEUED, inputs="{}", created_at=1),
            NOW,
        )
        assert b.get_status("in-other") is Status.ENQUEUED
    assert_schema_matches_metadata(empty_postgres_url, schema="other")
    assert migration_rows(empty_postgres_url, "other") == [(m.version, m.name) for m in MIGRATIONS]
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regnamespace('taskflow')").fetchone() == (None,)

    # The default schema in the same database is independent of it.
    with opened(empty_postgres_url) as b:
        assert b.schema_version() == 0
        assert b.migrate() == len(MIGRATIONS)
        assert b.get_status("in-other") is None
    with opened(empty_postgres_url, schema="other") as b:
        assert b.get_status("in-other") is Status.ENQUEUED


@pytest.mark.parametrize(
    "name",
    [
        "bad-name",
        "1starts_with_digit",
        'x"; DROP SCHEMA public CASCADE; --',
        "",
        "has space",
        "a" * 64,
        "ünïcode",
    ],
)
def test_invalid_postgres_schema_name_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="database_schema") as info:
        create_broker(Config(database_url="postgresql://u@127.0.0.1:1/x", database_schema=name))
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["taskflow", "Other_1", "_x", "a" * 63])
def test_valid_postgres_schema_names_are_accepted(name: str) -> None:
    b = create_broker(Config(database_url="postgresql://u@127.0.0.1:1/x", database_schema=name))
    b.close()


# -- connection errors -------------------------------------------------------------------


def test_unreachable_postgres_names_host_and_port_never_the_password() -> None:
    b = create_broker(
        Config(database_url="postgresql://u:secretpw@127.0.0.1:1/x", database_connect_timeout=1.0)
    )
    try:
        for call in (b.schema_version, b.migrate, lambda: b.get_status("x")):
            with pytest.raises(DatabaseConnectionError) as info:
                call()
            message = str(info.value)
            assert "127.0.0.1:1" in message
            assert "secretpw" not in message
            assert "\n" not in message
    finally:
        b.close()


def test_missing_sqlite_folder_is_a_clear_error(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}"
    with opened(url) as b, pytest.raises(DatabaseConnectionError, match="does not exist"):
        b.migrate()


# -- upgrading a database that holds work ----------------------------------------------------

V1_ROWS = [
    # id, status, queue, priority, executor_id, attempts, created_at, output
    ("v1-waiting-late", "ENQUEUED", "emails", 0, None, 0, NOW + 2, None),
    ("v1-waiting-early", "ENQUEUED", "emails", 0, None, 0, NOW + 1, None),
    ("v1-urgent", "ENQUEUED", "emails", 3, None, 0, NOW + 3, None),
    ("v1-running", "PENDING", "emails", 0, "exec-old", 2, NOW, None),
    ("v1-done", "SUCCESS", None, 0, "exec-old", 1, NOW, '"result"'),
]


def build_v1_database(url: str) -> None:
    """A database exactly as version 1 left it, holding workflows and a step."""
    postgres = is_postgres(url)
    dialect = "postgresql" if postgres else "sqlite"
    schema = "taskflow" if postgres else None
    prefix = '"taskflow".' if postgres else ""
    ddl = bootstrap_statements(dialect, schema) + migration_statements(
        MIGRATIONS[0], dialect, schema
    )
    mark = "%s" if postgres else "?"
    insert_workflow = (
        f"INSERT INTO {prefix}workflows (id, name, status, queue, priority, inputs, output, "
        "executor_id, app_version, attempts, created_at, updated_at, started_at) VALUES "
        f"({', '.join([mark] * 13)})"
    )
    workflows = [
        (
            wid,
            "orders.process",
            status,
            queue,
            prio,
            '{"args":[]}',
            output,
            executor,
            "v1",
            attempts,
            created,
            created,
            created if executor else None,
        )
        for wid, status, queue, prio, executor, attempts, created, output in V1_ROWS
    ]
    insert_step = (
        f"INSERT INTO {prefix}steps (workflow_id, step_id, name, output) VALUES "
        f"({mark}, {mark}, {mark}, {mark})"
    )
    record = (
        f"INSERT INTO {prefix}{MIGRATIONS_TABLE} (version, name, applied_at) VALUES "
        f"({mark}, {mark}, {mark})"
    )
    if postgres:
        with psycopg.connect(url) as conn:  # one transaction, committed on exit
            for statement in ddl:
                conn.execute(statement.encode())
            conn.cursor().executemany(insert_workflow, workflows)
            conn.execute(insert_step, ("v1-running", 0, "charge", '"paid"'))
            conn.execute(record, (1, MIGRATIONS[0].name, NOW))
        return
    lite = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        with lite:
            for statement in ddl:
                lite.execute(statement)
            lite.executemany(insert_workflow, workflows)
            lite.execute(insert_step, ("v1-running", 0, "charge", '"paid"'))
            lite.execute(record, (1, MIGRATIONS[0].name, NOW))
    finally:
        lite.close()


def test_version_1_database_with_rows_migrates_and_keeps_them(empty_database_url: str) -> None:
    url = empty_database_url
    build_v1_database(url)
    with opened(url) as b:
        assert b.schema_version() == 1
        assert b.migrate() == LATEST_VERSION - 1
        assert b.schema_version() == LATEST_VERSION

        for wid, status, queue, prio, executor, attempts, created, output in V1_ROWS:
            row = b.get_workflow(wid)
            assert row is not None, wid
            # Every version 1 field kept...
            assert (row.name, row.inputs, row.app_version) == (
                "orders.process",
                '{"args":[]}',
                "v1",
            )
            assert row.started_at == (created if executor else None)
            assert (row.status, row.queue, row.priority or 0, row.executor_id) == (
                Status(status),
                queue,
                prio,
                executor,
            )
            assert (row.attempts, row.created_at, row.output) == (attempts, created, output)
            assert row.retries == 0  # ...and the new column filled in
        assert [s.output for s in b.load_steps("v1-running")] == ['"paid"']

        # Old rows are claimable in the new order: priority 0 first, then FIFO.
        claimed = b.claim("exec-new", ["emails"], "v1", 10, NOW + 100)
        assert [r.id for r in claimed] == ["v1-waiting-early", "v1-waiting-late", "v1-urgent"]
        assert b.stale_executors(NOW) == [("exec-new", False), ("exec-old", False)]
    assert migration_rows(url) == [(m.version, m.name) for m in MIGRATIONS]
    assert_schema_matches_metadata(url)
