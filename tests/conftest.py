"""Shared fixtures: every test gets its own database.

Postgres databases are cloned from a template migrated once per session (fast, and isolated
even for worker processes the test starts). SQLite databases are files in the test's tmp
folder. Postgres tests skip loudly when no server answers, except under CI=true, where they
fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from taskflow import Taskflow

PG_ADMIN_URL = os.environ.get(
    "TASKFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


def _postgres_reason() -> str | None:
    try:
        _admin().close()
    except psycopg.OperationalError as exc:
        return f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """Name of a migrated template database (created once per session)."""
    reason = _postgres_reason()
    if reason is not None:
        if _IN_CI:
            pytest.fail(f"{reason} (CI=true: Postgres tests never skip)")
        pytest.skip(f"SKIPPING POSTGRES TESTS: {reason}")
    name = f"tf_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    app = Taskflow("template", database_url=_pg_url(name))
    app.migrate()
    app.close()
    yield name
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_template: str) -> str:
    """URL of the server's maintenance database (reachable: the template exists)."""
    return PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """URL of a fresh, migrated Postgres database for this test only."""
    name = f"tf_test_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(postgres_template)
            )
        )
    yield _pg_url(name)
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def empty_postgres_url(postgres_template: str) -> Iterator[str]:
    """URL of a fresh Postgres database with no taskflow schema at all."""
    name = f"tf_empty_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _pg_url(name)
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite file for this test only."""
    return f"sqlite:///{tmp_path / 'taskflow.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each dialect in turn (tests using it run twice)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., Taskflow]]:
    """Factory of apps on this test's database; every app is closed afterwards."""
    apps: list[Taskflow] = []

    def factory(name: str = "test", **kwargs: Any) -> Taskflow:
        kwargs.setdefault("database_url", database_url)
        kwargs.setdefault("app_version", "test-version")
        app = Taskflow(name, **kwargs)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app: Callable[..., Taskflow]) -> Taskflow:
    """An app on this test's database (run once per dialect)."""
    return make_app()
