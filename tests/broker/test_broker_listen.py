"""Listeners (LISTEN/NOTIFY on Postgres, data_version polling on SQLite) and enqueue_on, the
enqueue inside a producer's own transaction."""

from __future__ import annotations

import select
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from taskflow.broker import Broker, create_broker
from taskflow.broker.base import Listener
from taskflow.config import Config
from taskflow.errors import ConfigurationError
from taskflow.models import EnqueueResult

from .queueing import NOW, queued, stored, wait_until


@pytest.fixture
def listener(broker: Broker) -> Iterator[Listener]:
    it = broker.listen()
    yield it
    it.close()


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def woken(listener: Listener) -> Callable[[], bool]:
    return lambda: listener.wait(0.05)


# -- listeners ---------------------------------------------------------------------------


def test_listener_wakes_on_enqueue_from_another_broker(
    listener: Listener, make_broker: Callable[[], Broker]
) -> None:
    assert listener.wait(0) is False
    other = make_broker()
    other.enqueue([queued("wf-1"), queued("wf-2", queue="emails")], NOW)
    wait_until(woken(listener), "the listener to wake")
    # Everything pending is drained: the listener does not keep reporting the same work.
    wait_until(lambda: not listener.wait(0.01), "the listener to fall quiet")


def test_work_made_runnable_again_wakes_the_listener(
    broker: Broker, listener: Listener, make_broker: Callable[[], Broker]
) -> None:
    other = make_broker()
    other.enqueue([queued("a"), queued("b")], NOW)
    wait_until(woken(listener), "the enqueue to wake the listener")
    other.claim("exec-a", ["default"], "v1", 2, NOW)
    listener.wait(0)  # SQLite: the claim was a write too

    assert other.release("exec-a", ["a"], NOW, count_attempt=True) == ["a"]
    wait_until(woken(listener), "a release to wake the listener")
    assert other.retry_later("b", "exec-a", NOW, None, NOW)  # due now: ENQUEUED
    wait_until(woken(listener), "a retry due now to wake the listener")
    assert other.retry_later("a", "exec-a", NOW, None, NOW) is False  # not running: no-op


def test_listener_times_out_without_work(listener: Listener) -> None:
    assert listener.wait(0.05) is False


def test_listener_fileno(listener: Listener, broker: Broker, database_url: str) -> None:
    fd = listener.fileno()
    if not is_postgres(database_url):
        assert fd is None
        return
    assert isinstance(fd, int)
    broker.enqueue([queued("wf-1")], NOW)
    readable, _, _ = select.select([fd], [], [], 10)
    assert readable == [fd]
    assert listener.wait(0) is True


def test_sqlite_listener_wakes_when_another_connection_writes(sqlite_url: str) -> None:
    broker = create_broker(Config(database_url=sqlite_url))
    broker.migrate()
    listener = broker.listen()
    try:
        lite = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
        with lite:
            lite.execute("INSERT INTO queues (name, updated_at) VALUES ('x', 1)")
        lite.close()
        wait_until(woken(listener), "the listener to see the write")
        assert listener.wait(0) is False  # one change, reported once
    finally:
        listener.close()
        broker.close()


def test_postgres_notifies_once_per_queue_per_batch(postgres_url: str) -> None:
    broker = create_broker(Config(database_url=postgres_url))
    try:
        broker.migrate()
        channel = getattr(broker, "channel", "")
        assert channel == "taskflow_taskflow"
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'LISTEN "{channel}"')
            news = [queued(f"a{i}", queue="q1") for i in range(50)]
            news += [queued(f"b{i}", queue="q2") for i in range(50)]
            news += [queued("later", queue="q3", delay_until=NOW + 1_000)]
            broker.enqueue(news, NOW)
            got = [n.payload for n in conn.notifies(timeout=10, stop_after=2)]
            got += [n.payload for n in conn.notifies(timeout=0.2)]
            assert sorted(got) == ["q1", "q2"]  # a DELAYED row wakes nobody

            # A tick that makes work due wakes its queue.
            broker.tick(NOW + 1_000)
            assert [n.payload for n in conn.notifies(timeout=10, stop_after=1)] == ["q3"]
    finally:
        broker.close()


def test_postgres_listener_survives_a_dropped_connection(postgres_url: str) -> None:
    broker = create_broker(Config(database_url=postgres_url))
    listener = broker.listen()
    try:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
            ).fetchone()
        assert killed == (1,)
        # The call that notices the drop says "poll" instead of raising...
        wait_until(woken(listener), "the listener to notice the drop")
        # ...the next one reconnects (and says "poll" again: it may have missed work).
        assert listener.wait(0) is True
        assert listener.fileno() is not None
        assert listener.wait(0) is False
        broker.enqueue([queued("after")], NOW)
        wait_until(woken(listener), "the reconnected listener to wake")
    finally:
        listener.close()
        broker.close()


# -- enqueue_on: the caller's transaction --------------------------------------------------


def driver_connection(url: str) -> Any:
    """A plain driver connection in its default (transactional) mode."""
    if is_postgres(url):
        return psycopg.connect(url)
    return sqlite3.connect(url.removeprefix("sqlite:///"))


def sa_engine(url: str) -> sa.Engine:
    return sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.pool.NullPool
    )


def test_enqueue_on_a_driver_connection_commits_with_the_caller(
    broker: Broker, listener: Listener, database_url: str
) -> None:
    conn = driver_connection(database_url)
    try:
        results = broker.enqueue_on(conn, [queued("a"), queued("b"), queued("a")], NOW)
        assert results == [
            EnqueueResult(id="a", created=True),
            EnqueueResult(id="b", created=True),
            EnqueueResult(id="a", created=False, conflict="id", existing_id="a"),
        ]
        assert broker.get_workflow("a") is None  # not committed yet
        conn.commit()
    finally:
        conn.close()
    assert stored(broker, "a").queue == "default"
    assert stored(broker, "b").attempts == 0
    wait_until(woken(listener), "the commit to wake the listener")


def test_enqueue_on_a_driver_connection_rolled_back_leaves_nothing(
    broker: Broker, listener: Listener, database_url: str
) -> None:
    conn = driver_connection(database_url)
    try:
        assert broker.enqueue_on(conn, [queued("a", dedup_id="k")], NOW)[0].created
        # Inside the transaction the dedup key is held...
        assert broker.enqueue_on(conn, [queued("b", dedup_id="k")], NOW) == [
            EnqueueResult(id="b", created=False, conflict="dedup", existing_id="a")
        ]
        conn.rollback()
    finally:
        conn.close()
    assert broker.get_workflow("a") is None
    assert broker.find_dedup("default", "k") is None  # ...and nowhere after the rollback
    assert listener.wait(0.05) is False


@pytest.mark.parametrize("commit", [True, False])
def test_enqueue_on_a_sqlalchemy_connection(
    broker: Broker, listener: Listener, database_url: str, commit: bool
) -> None:
    engine = sa_engine(database_url)
    try:
        with engine.connect() as conn:
            assert broker.enqueue_on(conn, [queued("sa-conn")], NOW)[0].created
            assert broker.get_workflow("sa-conn") is None
            if commit:
                conn.commit()
            else:
                conn.rollback()
    finally:
        engine.dispose()
    if commit:
        assert [r.id for r in broker.claim("e", ["default"], "v1", 10, NOW)] == ["sa-conn"]
        wait_until(woken(listener), "the commit to wake the listener")
    else:
        assert broker.get_workflow("sa-conn") is None


def test_enqueue_on_a_sqlalchemy_connection_inside_begin(broker: Broker, database_url: str) -> None:
    engine = sa_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
            assert broker.enqueue_on(conn, [queued("in-begin")], NOW)[0].created
        assert stored(broker, "in-begin").queue == "default"
    finally:
        engine.dispose()


@pytest.mark.parametrize("commit", [True, False])
def test_enqueue_on_a_sqlalchemy_session(
    broker: Broker, listener: Listener, database_url: str, commit: bool
) -> None:
    engine = sa_engine(database_url)
    try:
        with Session(engine) as session:
            assert broker.enqueue_on(session, [queued("sa-session")], NOW)[0].created
            if commit:
                session.commit()
            else:
                session.rollback()
    finally:
        engine.dispose()
    if commit:
        assert stored(broker, "sa-session").queue == "default"
        wait_until(woken(listener), "the commit to wake the listener")
    else:
        assert broker.get_workflow("sa-session") is None


def test_enqueue_on_refuses_other_objects(broker: Broker) -> None:
    for bad in (object(), "postgresql://x", None):
        with pytest.raises(ConfigurationError, match=type(bad).__qualname__):
            broker.enqueue_on(bad, [queued("x")], NOW)
    assert broker.get_workflow("x") is None


def test_enqueue_on_refuses_a_connection_of_the_other_dialect(
    broker: Broker, database_url: str, tmp_path: Path, postgres_admin_url: str
) -> None:
    if is_postgres(database_url):
        other: Any = sqlite3.connect(tmp_path / "other.sqlite3")
        expected = "SQLite connection"
    else:
        other = psycopg.connect(postgres_admin_url)
        expected = "PostgreSQL connection"
    try:
        with pytest.raises(ConfigurationError, match=expected):
            broker.enqueue_on(other, [queued("x")], NOW)
    finally:
        other.close()


def test_sqlite_enqueue_on_refuses_another_file(sqlite_url: str, tmp_path: Path) -> None:
    broker = create_broker(Config(database_url=sqlite_url))
    try:
        broker.migrate()
        other = sqlite3.connect(tmp_path / "elsewhere.sqlite3")
        try:
            with pytest.raises(ConfigurationError, match=r"elsewhere\.sqlite3"):
                broker.enqueue_on(other, [queued("x")], NOW)
        finally:
            other.close()
    finally:
        broker.close()


def test_a_closed_listener_only_sleeps(broker: Broker, make_broker: Callable[[], Broker]) -> None:
    listener = broker.listen()
    listener.close()
    make_broker().enqueue([queued("x")], NOW)
    assert listener.wait(0.01) is False
    assert listener.fileno() is None
    listener.close()  # twice is fine
