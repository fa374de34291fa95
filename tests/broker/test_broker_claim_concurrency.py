"""Many claimers at once: every enqueued workflow is claimed exactly once (``FOR UPDATE SKIP
LOCKED`` on Postgres, ``BEGIN IMMEDIATE`` on SQLite), and every finish is recorded."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from taskflow.broker import Broker
from taskflow.models import Finish
from taskflow.status import Status

from .queueing import NOW, VERSION, queued

THREADS = 8
ROWS = 2_000
BATCH = 10


def test_concurrent_claimers_claim_every_row_exactly_once(
    broker: Broker, make_broker: Callable[[], Broker]
) -> None:
    broker.enqueue([queued(f"wf-{i:04d}", priority=i % 3 or None) for i in range(ROWS)], NOW)
    brokers = [make_broker() for _ in range(THREADS)]
    for b in brokers:
        assert b.get_status("wf-0000") is Status.ENQUEUED  # connect before the race
    claimed: list[list[str]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS, timeout=30)

    def run(i: int) -> None:
        me, b = f"claimer-{i}", brokers[i]
        try:
            barrier.wait()
            finishes: list[Finish] = []
            while True:
                batch = b.claim(me, ["default"], VERSION, BATCH, NOW, finishes)
                if not batch:
                    return
                assert len(batch) <= BATCH
                assert all(r.executor_id == me and r.attempts == 1 for r in batch)
                claimed[i] += [r.id for r in batch]
                finishes = [Finish(r.id, Status.SUCCESS, f'"{me}"') for r in batch]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a claimer did not finish"
    assert not errors, errors

    counts = Counter(wid for ids in claimed for wid in ids)
    assert len(counts) == ROWS
    assert set(counts.values()) == {1}
    if broker.dialect == "postgresql":
        # Claims really ran side by side. (On SQLite, BEGIN IMMEDIATE serializes them, and one
        # thread may legitimately win the write lock every time.)
        assert sum(1 for ids in claimed if ids) > 1, "only one claimer ever got work"
    # Each claimer's finishes (sent with its next claim) were recorded, as its own.
    for i, ids in enumerate(claimed):
        for wid in ids:
            row = broker.get_workflow(wid)
            assert row is not None
            assert (row.status, row.output) == (Status.SUCCESS, f'"claimer-{i}"')
    assert broker.claim("late", ["default"], VERSION, BATCH, NOW) == []
