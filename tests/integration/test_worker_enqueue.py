"""Producers racing and enqueueing inside their own transactions, with a real worker
running: what exists is exactly what was committed, once, and runs once."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from taskflow import Status, UnknownWorkflowError, WorkflowDeduplicatedError

from . import workerapp
from .helpers import PROCESS_LIMIT, Workers, read_side_effects, step_counts, workflow_ids

pytestmark = pytest.mark.slow

Producer = Callable[..., workerapp.WorkerApp]
PRODUCERS = 8
PICKUP_LIMIT = 5.0
"""Seconds a running worker may take to start a workflow committed just now (it is woken by a
notification, or polls every ``worker_poll_interval``)."""


def race(
    apps: list[workerapp.WorkerApp], enqueue: Callable[[workerapp.WorkerApp], str]
) -> list[str | BaseException]:
    """Run ``enqueue`` once per app, each in its own thread, all released at once by a
    barrier; return each id or exception."""
    for wa in apps:
        wa.app.migrate()  # connect before the start line
    barrier = threading.Barrier(len(apps))
    outcomes: list[str | BaseException] = [RuntimeError("did not run")] * len(apps)

    def produce(i: int) -> None:
        barrier.wait(timeout=PROCESS_LIMIT)
        try:
            outcomes[i] = enqueue(apps[i])
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(len(apps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PROCESS_LIMIT)
        assert not thread.is_alive(), "a producer thread hung"
    return outcomes


def touched(workdir: Path) -> list[str]:
    """Ids of the workflows whose step left a side effect, in order."""
    return [wid for _, wid, step, _ in read_side_effects(workdir) if step == "touch"]


# -- transactional enqueue -----------------------------------------------------------------
@pytest.mark.postgres
def test_enqueue_inside_a_psycopg_transaction(
    postgres_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``apply_async(connection=conn)``: a rollback leaves no workflow (and no worker runs
    it); a commit makes it exist and a running worker starts it promptly."""
    wa = make_producer(postgres_url)
    workers.start(postgres_url, "-c", "1")
    with psycopg.connect(postgres_url) as conn:
        rolled = wa.one_step.apply_async(("rolled",), workflow_id="tx-rollback", connection=conn)
        assert rolled.id == "tx-rollback"
        assert workflow_ids(postgres_url) == [], "visible before the transaction committed"
        conn.rollback()
        assert workflow_ids(postgres_url) == []

        committed = wa.one_step.apply_async(
            ("committed",), workflow_id="tx-commit", connection=conn
        )
        assert workflow_ids(postgres_url) == [], "visible before the transaction committed"
        committed_at = time.monotonic()
        conn.commit()

    assert committed.get(timeout=PROCESS_LIMIT) == "committed"
    latency = time.monotonic() - committed_at
    print(f"\ncommitted enqueue ran {latency:.3f}s after the commit")
    assert latency < PICKUP_LIMIT
    # The rolled-back one was enqueued first: had it existed, the worker would have run it.
    assert workflow_ids(postgres_url) == ["tx-commit"]
    with pytest.raises(UnknownWorkflowError, match="tx-rollback"):
        wa.app.retrieve("tx-rollback")
    assert touched(worker_dir) == ["tx-commit"]


@pytest.mark.postgres
def test_enqueue_inside_a_sqlalchemy_session(
    postgres_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """The same with a SQLAlchemy ``Session`` on a ``postgresql+psycopg://`` URL."""
    sa_url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    wa = make_producer(sa_url)
    workers.start(postgres_url, "-c", "1")
    engine = create_engine(sa_url)
    try:
        with Session(engine) as session:
            wa.one_step.apply_async(("rolled",), workflow_id="sa-rollback", connection=session)
            assert workflow_ids(postgres_url) == [], "visible before the transaction committed"
            session.rollback()
            committed = wa.one_step.apply_async(
                ("committed",), workflow_id="sa-commit", connection=session
            )
            assert workflow_ids(postgres_url) == [], "visible before the transaction committed"
            committed_at = time.monotonic()
            session.commit()
    finally:
        engine.dispose()

    assert committed.get(timeout=PROCESS_LIMIT) == "committed"
    latency = time.monotonic() - committed_at
    print(f"\ncommitted enqueue ran {latency:.3f}s after the commit")
    assert latency < PICKUP_LIMIT
    assert workflow_ids(postgres_url) == ["sa-commit"]
    assert touched(worker_dir) == ["sa-commit"]


def test_enqueue_inside_a_sqlite3_transaction(
    sqlite_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """The same on SQLite with a ``sqlite3`` connection to the database file."""
    wa = make_producer(sqlite_url)
    workers.start(sqlite_url, "-c", "1")  # migrates the file
    path = sqlite_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        wa.one_step.apply_async(("rolled",), workflow_id="lite-rollback", connection=conn)
        assert conn.in_transaction
        conn.rollback()
        assert workflow_ids(sqlite_url) == []
        committed = wa.one_step.apply_async(
            ("committed",), workflow_id="lite-commit", connection=conn
        )
        assert conn.in_transaction
        assert workflow_ids(sqlite_url) == [], "visible before the transaction committed"
        committed_at = time.monotonic()
        conn.commit()

    assert committed.get(timeout=PROCESS_LIMIT) == "committed"
    latency = time.monotonic() - committed_at
    print(f"\ncommitted enqueue ran {latency:.3f}s after the commit")
    assert latency < PICKUP_LIMIT
    assert workflow_ids(sqlite_url) == ["lite-commit"]
    assert touched(worker_dir) == ["lite-commit"]


# -- races between producers ---------------------------------------------------------------
def test_producers_racing_on_one_workflow_id_make_one_workflow_that_runs_once(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """8 producers (separate apps, one thread each) enqueue the same ``workflow_id`` at the
    same moment while a worker runs: one row, every producer gets its handle, one run."""
    apps = [make_producer(database_url) for _ in range(PRODUCERS)]
    workers.start(database_url, "-c", "1")

    outcomes = race(apps, lambda wa: wa.one_step.apply_async(("race",), workflow_id="order-42").id)

    assert outcomes == ["order-42"] * PRODUCERS
    assert workflow_ids(database_url) == ["order-42"]
    assert apps[0].app.retrieve("order-42").get(timeout=PROCESS_LIMIT) == "race"
    # Once it finished, the same id still answers with that workflow and runs nothing.
    again = apps[1].one_step.apply_async(("race",), workflow_id="order-42")
    assert again.get(timeout=PROCESS_LIMIT) == "race"
    assert workflow_ids(database_url) == ["order-42"]
    assert step_counts(worker_dir) == Counter({("order-42", "touch"): 1})


def test_producers_racing_on_one_dedup_id(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """8 producers enqueue with the same ``dedup_id`` at once: one is enqueued, the other 7
    get ``WorkflowDeduplicatedError``; with ``dedup_policy="return_existing"`` all 8 get the
    holder's id. Once the holder finished, the key is free again."""
    apps = [make_producer(database_url) for _ in range(PRODUCERS)]

    rejected = race(apps, lambda wa: wa.one_step.apply_async(("dedup",), dedup_id="cart-7").id)

    created = [o for o in rejected if isinstance(o, str)]
    errors = [o for o in rejected if not isinstance(o, str)]
    assert len(created) == 1, rejected
    assert len(errors) == PRODUCERS - 1
    for error in errors:
        assert isinstance(error, WorkflowDeduplicatedError), repr(error)
        assert "cart-7" in str(error)
    holder = created[0]
    assert workflow_ids(database_url) == [holder]

    returned = race(
        apps,
        lambda wa: (
            wa.one_step.apply_async(
                ("dedup",), dedup_id="cart-7", dedup_policy="return_existing"
            ).id
        ),
    )
    assert returned == [holder] * PRODUCERS
    assert workflow_ids(database_url) == [holder]

    workers.start(database_url, "-c", "1")
    assert apps[0].app.retrieve(holder).get(timeout=PROCESS_LIMIT) == "dedup"
    assert step_counts(worker_dir) == Counter({(holder, "touch"): 1})
    # Dedup holds only while the holder waits or runs.
    later = apps[0].one_step.apply_async(("dedup",), dedup_id="cart-7")
    assert later.id != holder
    assert later.get(timeout=PROCESS_LIMIT) == "dedup"
    assert sorted(touched(worker_dir)) == sorted([holder, later.id])


# -- versions ------------------------------------------------------------------------------
def test_a_workflow_pinned_to_another_version_is_left_to_a_worker_of_that_version(
    database_url: str, workers: Workers, worker_dir: Path, make_producer: Producer
) -> None:
    """``apply_async(app_version="other")`` stays ENQUEUED while a worker of another version
    runs the work enqueued after it; a worker of version "other" then runs it."""
    wa = make_producer(database_url)
    workers.start(database_url, "-c", "1", name="current")
    pinned = wa.one_step.apply_async(("pinned",), app_version="other")
    normal = wa.one_step.delay("normal")

    assert normal.get(timeout=PROCESS_LIMIT) == "normal"
    assert normal.info().app_version == workerapp.APP_VERSION
    assert pinned.status is Status.ENQUEUED
    assert touched(worker_dir) == [normal.id]

    workers.start(database_url, "-c", "1", name="other", app_version="other")
    assert pinned.get(timeout=PROCESS_LIMIT) == "pinned"
    info = pinned.info()
    assert info.app_version == "other"
    assert touched(worker_dir) == [normal.id, pinned.id]
