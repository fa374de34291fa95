"""Parsing database URLs: both dialects, clear errors, and never a password in a message."""

from __future__ import annotations

import pytest

from taskflow.broker.url import parse_database_url, validate_schema_name
from taskflow.errors import ConfigurationError

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://user@localhost/db",
        "postgres://user@localhost/db",
        "postgresql+psycopg://user@localhost/db",
        "postgresql+psycopg2://user@localhost/db",
        f"postgresql://user:{SECRET}@db.example:6543/shop?sslmode=require",
    ],
)
def test_postgres_urls(raw: str) -> None:
    url = parse_database_url(raw)
    assert url.dialect == "postgresql"
    conninfo = url.postgres_conninfo()
    assert conninfo.startswith("postgresql://")  # the driver suffix is gone for libpq
    assert "+psycopg" not in conninfo


def test_postgres_url_parts_and_redaction() -> None:
    url = parse_database_url(f"  postgresql://user:{SECRET}@db.example:6543/shop  ")
    assert url.url.host == "db.example"
    assert url.url.port == 6543
    assert url.redacted == "postgresql://user:***@db.example:6543/shop"
    assert SECRET not in url.redacted
    assert url.where == "PostgreSQL at db.example:6543 (database 'shop')"
    assert SECRET in url.postgres_conninfo()  # libpq needs it; it is never shown


def test_postgres_where_defaults() -> None:
    assert (
        parse_database_url("postgresql:///db").where
        == "PostgreSQL at localhost:5432 (database 'db')"
    )


def test_password_with_special_characters_is_kept_for_libpq() -> None:
    url = parse_database_url("postgresql://user:p%40ss%2Fw%3Ard@host/db")
    assert url.url.password == "p@ss/w:rd"
    assert "p%40ss%2Fw%3Ard" in url.postgres_conninfo()
    assert "p%40ss" not in url.redacted


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("sqlite:///taskflow.sqlite3", "taskflow.sqlite3"),
        ("sqlite:////abs/path/db.sqlite3", "/abs/path/db.sqlite3"),
        ("sqlite+pysqlite:///rel/db.sqlite3", "rel/db.sqlite3"),
    ],
)
def test_sqlite_urls(raw: str, path: str) -> None:
    url = parse_database_url(raw)
    assert url.dialect == "sqlite"
    assert url.sqlite_path == path
    assert url.where == f"SQLite file {path!r}"


@pytest.mark.parametrize("raw", ["", "   ", None, 42])
def test_empty_or_non_string_url(raw: object) -> None:
    with pytest.raises(ConfigurationError, match="non-empty string"):
        parse_database_url(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("not a url", "cannot parse"),
        (f"postgresql://user:{SECRET}@host:notaport/db", "cannot parse"),
        (f"mysql://user:{SECRET}@host/db", "unsupported database URL scheme 'mysql'"),
        (f"redis://:{SECRET}@host:6379/0", "unsupported"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        (f"://user:{SECRET}@host/db", "cannot parse"),
    ],
)
def test_bad_urls_are_configuration_errors_without_the_password(raw: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_database_url(raw)
    message = str(info.value)
    assert expected in message
    assert SECRET not in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["taskflow", "_private", "Mixed_Case_9", "a" * 63])
def test_valid_schema_names(name: str) -> None:
    assert validate_schema_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "9lives", "with-dash", "with space", 'quo"te', "a" * 64, "sch.ema", None]
)
def test_invalid_schema_names(name: object) -> None:
    with pytest.raises(ConfigurationError, match="database_schema") as info:
        validate_schema_name(name)  # type: ignore[arg-type]
    assert repr(name) in str(info.value)
