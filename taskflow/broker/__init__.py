"""The system database layer: one interface, a Postgres and a SQLite implementation."""

from __future__ import annotations

from taskflow.broker.base import Broker
from taskflow.broker.postgres import PostgresBroker
from taskflow.broker.sqlite import SQLiteBroker
from taskflow.broker.url import DatabaseURL, parse_database_url
from taskflow.config import Config


def create_broker(conf: Config) -> Broker:
    """The broker for an app's configuration (not yet connected: that happens on first use)."""
    url = parse_database_url(conf.resolved_database_url())
    if url.dialect == "postgresql":
        return PostgresBroker(
            url,
            schema=conf.database_schema,
            pool_size=conf.database_pool_size,
            connect_timeout=conf.database_connect_timeout,
        )
    return SQLiteBroker(
        url, synchronous=conf.sqlite_synchronous, busy_timeout=conf.sqlite_busy_timeout
    )


__all__ = ["Broker", "DatabaseURL", "create_broker", "parse_database_url"]
