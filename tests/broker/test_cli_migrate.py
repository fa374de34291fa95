"""``taskflow migrate``: applies, is idempotent, prints SQL for a DBA, fails in one clear line."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from taskflow.broker import Broker, create_broker
from taskflow.broker.migrations import LATEST_VERSION, MIGRATIONS
from taskflow.cli import main
from taskflow.config import Config
from taskflow.models import NewWorkflow
from taskflow.status import Status

UNREACHABLE = "postgresql://u:secretpw@127.0.0.1:1/x"


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


@contextmanager
def opened(url: str) -> Iterator[Broker]:
    b = create_broker(Config(database_url=url))
    try:
        yield b
    finally:
        b.close()


def version_of(url: str) -> int:
    with opened(url) as b:
        return b.schema_version()


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def sqlite_tables(url: str) -> list[str]:
    lite = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        rows = lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return sorted(r[0] for r in rows)
    finally:
        lite.close()


def test_migrate_applies_then_is_up_to_date(empty_database_url: str) -> None:
    first = run("migrate", "--database-url", empty_database_url)
    assert first.exit_code == 0, first.output
    assert f"applied {len(MIGRATIONS)} migration(s), version 0 -> {LATEST_VERSION}" in first.output
    assert version_of(empty_database_url) == LATEST_VERSION

    second = run("migrate", "--database-url", empty_database_url)
    assert second.exit_code == 0, second.output
    assert f"up to date (version {LATEST_VERSION})" in second.output
    assert version_of(empty_database_url) == LATEST_VERSION


def test_migrate_sql_prints_ddl_and_changes_nothing(empty_database_url: str) -> None:
    result = run("migrate", "--database-url", empty_database_url, "--sql")
    assert result.exit_code == 0, result.output
    out = result.stdout
    prefix = "taskflow." if is_postgres(empty_database_url) else ""
    assert f"CREATE TABLE IF NOT EXISTS {prefix}schema_migrations (" in out
    assert f"CREATE TABLE {prefix}workflows (" in out
    assert f"CREATE TABLE {prefix}steps (" in out
    assert "CREATE INDEX" in out
    assert out.rstrip().endswith("COMMIT;")
    if is_postgres(empty_database_url):
        assert 'CREATE SCHEMA IF NOT EXISTS "taskflow"' in out

    assert version_of(empty_database_url) == 0
    if is_postgres(empty_database_url):
        with psycopg.connect(empty_database_url, autocommit=True) as conn:
            assert conn.execute("SELECT to_regnamespace('taskflow')").fetchone() == (None,)
    else:
        assert sqlite_tables(empty_database_url) == []


def test_migrate_sql_script_builds_the_schema(empty_database_url: str) -> None:
    """What a DBA runs by hand leaves the same schema ``migrate`` would."""
    script = run("migrate", "--database-url", empty_database_url, "--sql").stdout
    if is_postgres(empty_database_url):
        with psycopg.connect(empty_database_url, autocommit=True) as conn:
            conn.execute(script.encode())
    else:
        lite = sqlite3.connect(empty_database_url.removeprefix("sqlite:///"))
        try:
            lite.executescript(script)
        finally:
            lite.close()
    with opened(empty_database_url) as b:
        assert b.schema_version() == LATEST_VERSION
        assert b.migrate() == 0
        assert b.start_workflow(
            NewWorkflow(id="w", name="n", status=Status.ENQUEUED, inputs="{}", created_at=1), 1
        ).created


def test_migrate_sql_on_an_up_to_date_database(database_url: str) -> None:
    assert run("migrate", "--database-url", database_url).exit_code == 0
    result = run("migrate", "--database-url", database_url, "--sql")
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.stdout
    assert "CREATE" not in result.stdout


def test_migrate_takes_the_database_from_the_app(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"cli_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        f"from taskflow import Taskflow\napp = Taskflow('cli', database_url={sqlite_url!r})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)

    result = run("migrate", "-A", module)
    assert result.exit_code == 0, result.output
    assert version_of(sqlite_url) == LATEST_VERSION
    # `taskflow -A app migrate` works too (Celery's order).
    again = run("-A", f"{module}:app", "migrate")
    assert again.exit_code == 0, again.output
    assert "up to date" in again.output


def test_migrate_refuses_app_and_url_together(sqlite_url: str) -> None:
    result = CliRunner().invoke(main, ["migrate", "-A", "x", "--database-url", sqlite_url])
    assert result.exit_code != 0


def test_migrate_with_an_unknown_app_is_one_clear_line() -> None:
    result = CliRunner().invoke(main, ["migrate", "-A", f"no_such_mod_{uuid.uuid4().hex}"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: cannot import module")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("sql", [False, True])
def test_unreachable_database_is_one_line_without_the_password(sql: bool) -> None:
    args = ["migrate", "--database-url", UNREACHABLE] + (["--sql"] if sql else [])
    proc = subprocess.run(
        [sys.executable, "-c", "from taskflow.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "127.0.0.1:1" in err
    assert "secretpw" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "url",
    ["mysql://u:secretpw@127.0.0.1/x", "postgresql://u:secretpw@host:notaport/x", "sqlite://"],
)
def test_bad_url_is_one_line_without_the_password(url: str) -> None:
    result = CliRunner().invoke(main, ["migrate", "--database-url", url])
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert err.startswith("Error: ")
    assert len(err.splitlines()) == 1, err
    assert "secretpw" not in result.output


def test_missing_sqlite_folder_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}"
    result = CliRunner().invoke(main, ["migrate", "--database-url", url])
    assert result.exit_code == 1
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "does not exist" in err
