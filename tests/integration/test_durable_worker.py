"""Durable sleep, messages, events and child results through real ``taskflow worker``
processes on :mod:`durableapp`, including SIGKILL at the worst moments, checked from outside.

- 500 workflows that each sleep 10 s then run one step finish well under a minute with one
  ``-c 2`` worker: sleeping workflows hold no slot, and ``concurrency=5`` holds for the
  running parts;
- a sleep wakes at its recorded time after the worker is killed mid-sleep (sleeping in its
  thread, or parked), neither later by the downtime nor earlier;
- messages sent while the receiver is killed and recovered are each received exactly once,
  in send order;
- a workflow parked in ``get_event`` is woken by the event;
- a parent killed between starting a child and recording it gets the same child on replay.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from taskflow import Status, Taskflow

from . import durableapp
from .helpers import Workers, status_counts, wait_for

pytestmark = pytest.mark.slow

APP = "tests.integration.durableapp:app"


@pytest.fixture
def producer(database_url: str) -> Iterator[Taskflow]:
    """The test's own app on the workers' database (same workflows and queue)."""
    app = durableapp.create_app(database_url)
    yield app
    app.close()


def log_lines(workdir: Path, kind: str) -> list[list[str]]:
    """The records of one kind, as fields (the kind itself dropped)."""
    path = workdir / durableapp.LOG
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    return [f[1:] for f in lines if f[0] == kind]


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (ends sort before starts at equal times)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = now = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return peak


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(durableapp.PARK_AFTER_ENV, raising=False)
    monkeypatch.delenv(durableapp.DIE_ENV, raising=False)


def test_sleeping_workflows_hold_no_slot_and_the_queue_limit_holds(
    database_url: str, producer: Taskflow, workers: Workers, worker_dir: Path
) -> None:
    count = 500 if database_url.startswith("postgres") else 150
    nap = producer._workflows["durable.nap"]
    workers.start(database_url, "-c", "2", app=APP)
    started = time.monotonic()
    handles = nap.delay_many([(f"n{i}", 10.0, 20) for i in range(count)])
    wait_for(
        lambda: status_counts(database_url).get("SUCCESS", 0) == count,
        f"{count} sleepers to finish",
        limit=60.0,
        interval=0.2,
    )
    elapsed = time.monotonic() - started
    # 10 s of sleep, then 500 steps of 20 ms five at a time (2 s) plus their replays: far
    # below a minute, which holding a slot per sleeper (8 slots) could never reach.
    assert elapsed < 45.0, f"took {elapsed:.1f}s"
    starts: dict[str, float] = {}
    for f in log_lines(worker_dir, "nap-start"):
        starts.setdefault(f[1], float(f[2]))  # the first run; replays log again
    step_starts = {f[1]: float(f[2]) for f in log_lines(worker_dir, "step-start")}
    step_ends = {f[1]: float(f[2]) for f in log_lines(worker_dir, "step-end")}
    assert len(step_starts) == count == len(step_ends)
    for h in handles:
        # Never earlier than the recorded wake-up time (10 ms of clock rounding allowed).
        assert step_starts[h.id] >= starts[h.id] + 10.0 - 0.01
    peak = peak_overlap([(step_starts[w], step_ends[w]) for w in step_starts])
    assert peak <= durableapp.NAPS_CONCURRENCY
    assert peak >= 2, "the steps never overlapped: the test proves nothing about the limit"


@pytest.mark.parametrize("park_after", [60.0, 1.0], ids=["in-thread", "parked"])
def test_sleep_wakes_at_its_recorded_time_after_a_kill(
    database_url: str,
    producer: Taskflow,
    workers: Workers,
    worker_dir: Path,
    park_after: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(durableapp.PARK_AFTER_ENV, str(park_after))
    nap = producer._workflows["durable.nap"]
    first = workers.start(database_url, "-c", "1", app=APP)
    h = nap.delay("k", 6.0)
    wait_for(lambda: bool(h.steps()), "the sleep to be recorded")
    if park_after < 6.0:
        wait_for(lambda: h.status is Status.DELAYED, "the nap to park")
    first.kill()
    workers.start(database_url, "-c", "1", app=APP)
    woke = h.get(timeout=30)
    began = float(log_lines(worker_dir, "nap-start")[0][2])
    # Wakes at began + 6 s: not before, and not 6 s after the recovery (~4 s after the kill).
    assert began + 6.0 - 0.01 <= woke < began + 6.0 + 2.5
    assert [f[0] for f in log_lines(worker_dir, "step-start")] == ["k"]


def test_messages_are_received_once_in_order_across_a_kill(
    database_url: str, producer: Taskflow, workers: Workers
) -> None:
    total = 40
    inbox = producer._workflows["durable.inbox"]
    first = workers.start(database_url, "-c", "1", app=APP)
    h = inbox.delay(total, 30.0)
    assert producer.get_event(h.id, "ready", timeout=20) is True
    sent: list[int] = []

    def sender() -> None:
        for i in range(total):
            producer.send(h.id, i)
            sent.append(i)
            time.sleep(0.02)

    thread = threading.Thread(target=sender)
    thread.start()
    wait_for(
        lambda: (producer.get_event(h.id, "received", timeout=0) or 0) >= 10,
        "ten messages received",
    )
    first.kill()  # messages keep arriving while nobody runs the receiver
    workers.start(database_url, "-c", "1", app=APP)
    thread.join()
    assert h.get(timeout=30) == list(range(total))
    assert sent == list(range(total))


def test_a_parked_get_event_wakes_when_the_event_is_set(
    database_url: str, producer: Taskflow, workers: Workers
) -> None:
    watcher = producer._workflows["durable.watcher"]
    publisher = producer._workflows["durable.publisher"]
    workers.start(database_url, "-c", "1", app=APP)
    target = "pub-1"
    w = watcher.delay(target, 60.0)
    wait_for(lambda: w.status is Status.DELAYED, "the watcher to park")
    publisher.apply_async(([7], 0.0), workflow_id=target)
    assert w.get(timeout=20) == 7


def test_a_parent_killed_between_starting_a_child_and_recording_it_gets_the_same_child(
    database_url: str,
    producer: Taskflow,
    workers: Workers,
    worker_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(durableapp.DIE_ENV, "1")
    family = producer._workflows["durable.family"]
    workers.start(database_url, "-c", "1", app=APP)
    h = family.delay(3, 0.2)
    assert h.get(timeout=30) == 0 + 1 + 4
    assert (worker_dir / durableapp.DIED).read_text() == h.id
    rows = _children(database_url, h.id)
    assert sorted(rows) == [f"{h.id}-{i}" for i in range(3)]
    counts = status_counts(database_url)
    assert counts == {"SUCCESS": 4}


def _children(database_url: str, parent_id: str) -> list[str]:
    rows: list[Any]
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = conn.execute(
                "SELECT id FROM workflows WHERE parent_id = ?", (parent_id,)
            ).fetchall()
    else:
        with psycopg.connect(database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id FROM taskflow.workflows WHERE parent_id = %s", (parent_id,)
            ).fetchall()
    return [str(r[0]) for r in rows]
