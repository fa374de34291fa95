"""Parsing system database URLs, and showing them without their password."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from taskflow.errors import ConfigurationError

_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"}
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed system database URL."""

    dialect: str
    """``"postgresql"`` or ``"sqlite"``."""
    url: URL

    @property
    def redacted(self) -> str:
        """The URL with its password replaced by ``***``: safe for logs and errors."""
        return self.url.render_as_string(hide_password=True)

    @property
    def sqlite_path(self) -> str:
        """The file of a SQLite URL."""
        return self.url.database or ""

    def postgres_conninfo(self) -> str:
        """A libpq URL psycopg accepts (the SQLAlchemy driver suffix removed)."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def where(self) -> str:
        """Host, port and database, for error messages."""
        if self.dialect == "sqlite":
            return f"SQLite file {self.sqlite_path!r}"
        host = self.url.host or "localhost"
        port = self.url.port or 5432
        return f"PostgreSQL at {host}:{port} (database {self.url.database or '(default)'!r})"


def parse_database_url(raw: str) -> DatabaseURL:
    """Parse ``raw`` or raise :class:`ConfigurationError` saying why (password hidden)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigurationError(f"database URL must be a non-empty string, got {raw!r}")
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise ConfigurationError(
            f"cannot parse database URL {_scrub(raw)!r}: expected postgresql://user@host/db "
            "or sqlite:///path/to/file"
        ) from exc
    driver = url.drivername
    if driver in _POSTGRES_DRIVERS:
        return DatabaseURL("postgresql", url)
    if driver in {"sqlite", "sqlite+pysqlite"}:
        if not url.database or url.database == ":memory:":
            raise ConfigurationError(
                f"database URL {url.render_as_string(hide_password=True)!r} is an in-memory "
                "SQLite database, which no other process can see and a crash erases; "
                "use a file: sqlite:///taskflow.sqlite3"
            )
        return DatabaseURL("sqlite", url)
    raise ConfigurationError(
        f"unsupported database URL scheme {driver!r} in "
        f"{url.render_as_string(hide_password=True)!r}: use postgresql:// or sqlite:///"
    )


def validate_schema_name(name: str) -> str:
    """A Postgres schema name taskflow can use unquoted-safe, or :class:`ConfigurationError`."""
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise ConfigurationError(
            f"database_schema must be a plain identifier (letters, digits, _), got {name!r}"
        )
    return name


def _scrub(raw: str) -> str:
    # Hide anything between "://user:" and "@" even when the URL as a whole does not parse.
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", raw)


__all__ = ["DatabaseURL", "parse_database_url", "validate_schema_name"]
