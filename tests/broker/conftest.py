"""Fixtures of the broker conformance suite: every test here runs against SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from taskflow.broker import Broker, create_broker
from taskflow.config import Config


@pytest.fixture
def broker(database_url: str) -> Iterator[Broker]:
    """A migrated broker on this test's fresh database (once per dialect), closed afterwards."""
    b = create_broker(Config(database_url=database_url))
    b.migrate()
    yield b
    b.close()


@pytest.fixture
def make_broker(database_url: str) -> Iterator[Callable[[], Broker]]:
    """Factory of extra brokers on the same database (separate connections, as separate
    processes would have); all closed afterwards."""
    made: list[Broker] = []

    def factory() -> Broker:
        b = create_broker(Config(database_url=database_url))
        made.append(b)
        return b

    yield factory
    for b in made:
        b.close()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest) -> str:
    """A database of each dialect in turn with no taskflow schema at all."""
    fixture = "sqlite_url" if request.param == "sqlite" else "empty_postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url
