"""Conformance of retention (``Broker.prune``, ``count_prunable``) and of ``purge_queue``, on
both dialects: exactly the old finished workflows go, with their rows in every table; waiting,
running and recent ones stay; batches; children; side tables; and rows another transaction
holds are skipped, never waited for (Postgres).

Time is the ``now`` each call passes: nothing here sleeps.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest

from taskflow.broker import Broker, create_broker
from taskflow.broker.base import PruneResult
from taskflow.broker.postgres import PostgresBroker
from taskflow.config import Config
from taskflow.models import NewWorkflow, StepRow
from taskflow.queues import Queue, RateLimit
from taskflow.retention import prune
from taskflow.status import Status

from .queueing import EXECUTOR, NOW, VERSION, claim_all, queued, stored

DAY = 86_400_000
OLD = NOW - 10 * DAY
"""When the old workflows finished: well before the cutoff."""
CUTOFF = NOW - 7 * DAY
RECENT = NOW - DAY
FINISHED = (Status.SUCCESS, Status.ERROR, Status.CANCELLED, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED)
TABLES = {
    "workflows": "id",
    "steps": "workflow_id",
    "events": "workflow_id",
    "streams": "workflow_id",
    "messages": "destination_id",
}


# -- helpers -------------------------------------------------------------------------------


@contextlib.contextmanager
def raw(database_url: str) -> Iterator[Any]:
    """A plain driver connection (autocommit) on the test's database, where taskflow's
    tables are reached by their bare names."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()
    else:
        with psycopg.connect(database_url, autocommit=True) as pg:
            pg.execute("SET search_path = taskflow")
            yield pg


def rows_of(database_url: str, ids: Sequence[str]) -> dict[str, int]:
    """How many rows each table holds for ``ids`` (counted with a plain driver)."""
    out: dict[str, int] = {}
    with raw(database_url) as conn:
        for table, column in TABLES.items():
            total = 0
            for wid in ids:
                query = f"SELECT count(*) FROM {table} WHERE {column} = "
                query += "?" if isinstance(conn, sqlite3.Connection) else "%s"
                total += conn.execute(query, (wid,)).fetchone()[0]
            out[table] = total
    return out


def count(database_url: str, table: str) -> int:
    with raw(database_url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def running(broker: Broker, workflow_id: str, *, parent_id: str | None = None) -> None:
    """A PENDING workflow owned by :data:`EXECUTOR`."""
    new = NewWorkflow(
        id=workflow_id,
        name="orders.process",
        status=Status.PENDING,
        inputs='{"args":[],"kwargs":{}}',
        executor_id=EXECUTOR,
        app_version=VERSION,
        parent_id=parent_id,
        created_at=OLD - DAY,
        started_at=OLD - DAY,
    )
    assert broker.start_workflow(new, OLD - DAY).created


def with_history(broker: Broker, workflow_id: str, *, parent_id: str | None = None) -> None:
    """A running workflow with a row in every table that belongs to it: two steps, an
    event, a stream, a read message and an unread one."""
    running(broker, workflow_id, parent_id=parent_id)
    when = OLD - DAY
    broker.record_step(workflow_id, StepRow(step_id=0, name="s0", output='"ok"'))
    broker.send_message(workflow_id, "t", '"read"', when)
    message, _ = broker.take_message(workflow_id, "t", 1, "recv", when, when)
    assert message == '"read"'
    broker.set_event(workflow_id, "stage", '"charged"', when)
    broker.write_stream(workflow_id, "log", '"line"', when)
    broker.send_message(workflow_id, "other", '"unread"', when)


def finished(
    broker: Broker,
    workflow_id: str,
    status: Status = Status.SUCCESS,
    at: int = OLD,
    *,
    parent_id: str | None = None,
) -> None:
    """A workflow with a full history that ended in ``status`` at ``at``."""
    with_history(broker, workflow_id, parent_id=parent_id)
    if status in (Status.SUCCESS, Status.ERROR):
        error = '{"type":"builtins.ValueError","message":"x"}' if status is Status.ERROR else None
        output = '"done"' if status is Status.SUCCESS else None
        assert broker.finish_workflow(workflow_id, status, output, error, at)
    else:
        assert broker.set_status(workflow_id, status, Status.PENDING, at)
    assert stored(broker, workflow_id).finished_at == at


def everything_of_one() -> dict[str, int]:
    """The rows :func:`finished` writes for one workflow."""
    return {"workflows": 1, "steps": 2, "events": 1, "streams": 1, "messages": 2}


def prune_all(broker: Broker, before: int = CUTOFF, batch: int = 100) -> PruneResult:
    return prune(broker, before, batch=batch, now=lambda: NOW)


# -- prune ---------------------------------------------------------------------------------


def test_prune_removes_old_finished_workflows_with_every_row_of_theirs(
    broker: Broker, database_url: str
) -> None:
    old = [f"old-{s.value.lower()}" for s in FINISHED]
    for wid, status in zip(old, FINISHED, strict=True):
        finished(broker, wid, status)
    assert rows_of(database_url, old) == {k: 4 * v for k, v in everything_of_one().items()}

    done = broker.prune(CUTOFF, 100, NOW)

    assert done == PruneResult(workflows=4, steps=8, events=4, streams=4, messages=8)
    assert rows_of(database_url, old) == dict.fromkeys(TABLES, 0)
    for wid in old:
        assert broker.get_workflow(wid) is None
    # Nothing left: the next batch is empty.
    assert broker.prune(CUTOFF, 100, NOW) == PruneResult()


def test_prune_keeps_recent_waiting_and_running_workflows(
    broker: Broker, database_url: str
) -> None:
    finished(broker, "old", Status.SUCCESS)
    finished(broker, "recent", Status.SUCCESS, at=RECENT)
    finished(broker, "at-the-cutoff", Status.ERROR, at=CUTOFF)  # not *before* it
    with_history(broker, "running")  # started long ago, still PENDING
    broker.enqueue([queued("waiting", created_at=OLD)], OLD)
    broker.enqueue([queued("delayed", created_at=OLD, delay_until=NOW + DAY)], OLD)
    # Resumed after failing long ago: waiting again, so kept (resume clears finished_at).
    finished(broker, "resumed", Status.ERROR)
    assert [r.changed for r in broker.resume(["resumed"], OLD + 1)] == [True]

    assert broker.prune(CUTOFF, 100, NOW).workflows == 1

    assert broker.get_workflow("old") is None
    kept = ["recent", "at-the-cutoff", "running", "waiting", "delayed", "resumed"]
    for wid in kept:
        assert broker.get_workflow(wid) is not None, wid
    assert rows_of(database_url, ["recent", "at-the-cutoff", "running"]) == {
        k: 3 * v for k, v in everything_of_one().items()
    }


def test_prune_deletes_in_batches_oldest_first(broker: Broker) -> None:
    for i in range(25):
        running(broker, f"wf-{i:02}")
        assert broker.finish_workflow(f"wf-{i:02}", Status.SUCCESS, "null", None, OLD + i)

    first = broker.prune(CUTOFF, 10, NOW)
    assert first.workflows == 10 and first.full(10)
    remaining = [f"wf-{i:02}" for i in range(25) if broker.get_workflow(f"wf-{i:02}")]
    assert remaining == [f"wf-{i:02}" for i in range(10, 25)]

    calls: list[PruneResult] = []
    total = prune(broker, CUTOFF, batch=10, now=lambda: NOW, on_batch=calls.append)
    assert [c.workflows for c in calls] == [10, 5]  # stops at the first short batch
    assert total.workflows == 15
    assert not total.full(100)


def test_prune_loop_stops_when_asked(broker: Broker) -> None:
    for i in range(6):
        running(broker, f"wf-{i}")
        assert broker.finish_workflow(f"wf-{i}", Status.SUCCESS, "null", None, OLD)
    total = prune(broker, CUTOFF, batch=2, now=lambda: NOW, keep_going=lambda: False)
    assert total.workflows == 2


def test_a_child_outlives_its_pruned_parent(broker: Broker, database_url: str) -> None:
    finished(broker, "parent", Status.SUCCESS)
    with_history(broker, "child", parent_id="parent")

    assert broker.prune(CUTOFF, 100, NOW).workflows == 1
    assert broker.get_workflow("parent") is None

    # Everything a running child does still works without its parent's row.
    assert broker.record_step("child", StepRow(step_id=5, name="s5", output="1")).inserted
    assert [o.id for o in broker.orphans(EXECUTOR)] == ["child"]
    assert broker.orphans(EXECUTOR)[0].parent_status is None
    assert broker.release(EXECUTOR, ["child"], NOW, count_attempt=True) == ["child"]
    [claimed] = claim_all(broker)
    assert claimed.id == "child" and claimed.parent_id == "parent"
    assert broker.finish_workflow("child", Status.SUCCESS, '"ok"', None, NOW)
    assert stored(broker, "child").status is Status.SUCCESS
    # And it is pruned in turn once old.
    assert broker.prune(NOW + 1, 100, NOW + 1).workflows == 1
    assert rows_of(database_url, ["child"]) == dict.fromkeys(TABLES, 0)


def test_a_finished_child_is_kept_while_its_parent_runs(broker: Broker) -> None:
    with_history(broker, "parent")
    finished(broker, "child", Status.SUCCESS, parent_id="parent")
    finished(broker, "orphan-child", Status.SUCCESS, parent_id="never-existed")

    assert broker.count_prunable(CUTOFF, NOW).workflows == 1
    assert broker.prune(CUTOFF, 100, NOW).workflows == 1  # only the orphan child
    assert broker.get_workflow("child") is not None

    assert broker.finish_workflow("parent", Status.SUCCESS, "null", None, OLD)
    assert broker.prune(CUTOFF, 100, NOW).workflows == 2


def test_count_prunable_counts_what_prune_deletes_and_changes_nothing(
    broker: Broker, database_url: str
) -> None:
    for i, status in enumerate(FINISHED):
        finished(broker, f"old-{i}", status)
    finished(broker, "recent", at=RECENT)
    before = {t: count(database_url, t) for t in TABLES}

    preview = broker.count_prunable(CUTOFF, NOW)

    assert {t: count(database_url, t) for t in TABLES} == before
    assert preview == PruneResult(workflows=4, steps=8, events=4, streams=4, messages=8)
    assert prune_all(broker, batch=3) == preview


def test_prune_removes_debounce_rows_whose_workflow_no_longer_waits(
    broker: Broker, database_url: str
) -> None:
    def debounce(key: str, workflow_id: str, delay_ms: int) -> None:
        new = NewWorkflow(
            id=workflow_id,
            name="digest.send",
            status=Status.DELAYED,
            inputs='{"args":[],"kwargs":{}}',
            queue="default",
            created_at=NOW,
        )
        assert broker.debounce(new, key, delay_ms, None, NOW).created

    debounce("waiting", "d-waiting", 60_000)  # DELAYED, never started: its row matters
    debounce("started", "d-started", 0)  # ENQUEUED at once, then claimed
    assert [r.id for r in claim_all(broker)] == ["d-started"]
    debounce("done", "d-done", 0)
    assert [r.id for r in claim_all(broker)] == ["d-done"]
    assert broker.finish_workflow("d-done", Status.SUCCESS, "null", None, NOW)
    debounce("gone", "d-gone", 0)
    with raw(database_url) as conn:
        conn.execute("DELETE FROM workflows WHERE id = 'd-gone'")

    assert broker.count_prunable(CUTOFF, NOW).debounces == 3
    assert broker.prune(CUTOFF, 100, NOW).debounces == 3
    with raw(database_url) as conn:
        keys = [r[0] for r in conn.execute("SELECT debounce_key FROM debounces").fetchall()]
    assert keys == ["waiting"]
    # Only once the workflows are exhausted (the side tables are scanned whole): a full
    # batch of workflows leaves them for the pass's last batch.
    debounce("later", "d-later", 0)
    claim_all(broker)
    for i in range(2):
        finished(broker, f"old-{i}")
    assert broker.prune(CUTOFF, 2, NOW) == PruneResult(
        workflows=2, steps=4, events=2, streams=2, messages=4
    )
    assert broker.prune(CUTOFF, 2, NOW) == PruneResult(debounces=1)
    # Batched like the workflows.
    for i in range(3):
        debounce(f"k{i}", f"d{i}", 0)
    claim_all(broker)
    assert broker.prune(CUTOFF, 2, NOW).debounces == 2
    assert broker.prune(CUTOFF, 2, NOW).debounces == 1


def test_prune_removes_queue_starts_no_window_counts(broker: Broker, database_url: str) -> None:
    broker.declare_queues([Queue("limited", rate_limit=RateLimit(10, 60.0))], VERSION, OLD)
    starts = [
        ("limited", OLD),  # old and outside the 60 s window
        ("limited", NOW - 1_000),  # inside the window: kept whatever the cutoff
        ("forgotten", OLD),  # a queue with no recorded limit any more
        ("forgotten", RECENT),  # younger than the cutoff
    ]
    with raw(database_url) as conn:
        mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
        for queue, at in starts:
            conn.execute(
                "INSERT INTO queue_starts (queue, partition_key, started_at) "
                f"VALUES ({mark}, '', {mark})",
                (queue, at),
            )

    assert broker.count_prunable(CUTOFF, NOW).queue_starts == 2
    assert broker.prune(CUTOFF, 100, NOW).queue_starts == 2
    # With a cutoff of now, only the window keeps a start.
    assert broker.prune(NOW, 100, NOW).queue_starts == 1
    with raw(database_url) as conn:
        left = conn.execute("SELECT queue, started_at FROM queue_starts").fetchall()
    assert [tuple(r) for r in left] == [("limited", NOW - 1_000)]


def test_a_pruned_id_may_be_started_again(broker: Broker) -> None:
    finished(broker, "evt-9")
    assert broker.prune(CUTOFF, 100, NOW).workflows == 1
    result = broker.enqueue([queued("evt-9", created_at=NOW)], NOW)
    assert result[0].created
    assert stored(broker, "evt-9").status is Status.ENQUEUED
    assert broker.load_steps("evt-9") == []


@pytest.fixture
def pg_broker(postgres_url: str) -> Iterator[Broker]:
    """A broker on Postgres only (SQLite has one writer at a time: no row lock to skip)."""
    b = create_broker(Config(database_url=postgres_url))
    b.migrate()
    yield b
    b.close()


def test_prune_skips_rows_another_transaction_holds(pg_broker: Broker, postgres_url: str) -> None:
    broker, database_url = pg_broker, postgres_url
    assert isinstance(broker, PostgresBroker)
    finished(broker, "held")
    finished(broker, "free")
    result: list[PruneResult] = []
    with psycopg.connect(database_url) as holder:  # a transaction left open
        holder.execute("SELECT 1 FROM taskflow.workflows WHERE id = 'held' FOR UPDATE")
        thread = threading.Thread(target=lambda: result.append(broker.prune(CUTOFF, 100, NOW)))
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive(), "prune waited for a row lock"
        holder.rollback()
    assert result[0].workflows == 1
    assert broker.get_workflow("free") is None
    assert broker.get_workflow("held") is not None
    assert broker.prune(CUTOFF, 100, NOW).workflows == 1  # the next pass takes it


# -- purge ---------------------------------------------------------------------------------


def test_purge_cancels_what_waits_in_the_queue_and_nothing_else(broker: Broker) -> None:
    broker.enqueue(
        [
            queued("mail-1", queue="mail"),
            queued("mail-2", queue="mail"),
            queued("mail-later", queue="mail", delay_until=NOW + DAY),
            queued("mail-3", queue="mail"),
            queued("other", queue="reports"),
        ],
        NOW,
    )
    # Claim one of mail's: it runs, so purge leaves it.
    claimed = broker.claim(EXECUTOR, ["mail"], VERSION, 1, NOW)
    assert [r.id for r in claimed] == ["mail-1"]
    # A child running elsewhere of a waiting workflow goes with it, as cancel does.
    running(broker, "child-of-later", parent_id="mail-later")
    finished(broker, "mail-done")

    cancelled = broker.purge_queue("mail", NOW + 1)

    assert sorted(cancelled) == ["child-of-later", "mail-2", "mail-3", "mail-later"]
    for wid in cancelled:
        row = stored(broker, wid)
        assert (row.status, row.finished_at) == (Status.CANCELLED, NOW + 1), wid
    assert stored(broker, "mail-1").status is Status.PENDING
    assert stored(broker, "other").status is Status.ENQUEUED
    assert stored(broker, "mail-done").status is Status.SUCCESS
    assert broker.purge_queue("mail", NOW + 2) == []
    assert broker.purge_queue("no-such-queue", NOW + 2) == []
