"""Claims from limited queues, on both dialects: concurrency, per-worker limits, sliding-window
rate limits, partitions (and their fairness), declarations (newest version wins), and
concurrent claimers that never overshoot a limit together."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from taskflow.broker import Broker
from taskflow.broker.flow_control import MIN_KEYS_PER_CLAIM
from taskflow.models import Finish
from taskflow.queues import Queue, RateLimit
from taskflow.status import Status

from .queueing import NOW, VERSION, queued

Q = "limited"


def _fill(broker: Broker, n: int, *, key: Callable[[int], str | None] = lambda _: None) -> None:
    broker.enqueue(
        [
            queued(f"wf-{i:04d}", queue=Q, created_at=NOW + i, partition_key=key(i))
            for i in range(n)
        ],
        NOW,
    )


def _finish(broker: Broker, executor: str, ids: list[str]) -> None:
    broker.claim(executor, [], VERSION, 0, NOW, [Finish(i, Status.SUCCESS, "null") for i in ids])


def test_concurrency_counts_running_work_of_every_executor(broker: Broker) -> None:
    _fill(broker, 10)
    spec = Queue(Q, concurrency=3)
    first = broker.claim_limited("a", spec, VERSION, 2, NOW)
    assert [r.id for r in first.rows] == ["wf-0000", "wf-0001"]
    second = broker.claim_limited("b", spec, VERSION, 5, NOW)
    assert [r.id for r in second.rows] == ["wf-0002"]  # 2 running elsewhere: room for 1
    assert broker.claim_limited("b", spec, VERSION, 5, NOW).rows == []
    _finish(broker, "a", ["wf-0000"])
    assert [r.id for r in broker.claim_limited("b", spec, VERSION, 5, NOW).rows] == ["wf-0003"]
    assert all(r.status is Status.PENDING for r in second.rows)


def test_worker_concurrency_counts_only_the_claimers_own_work(broker: Broker) -> None:
    _fill(broker, 10)
    spec = Queue(Q, worker_concurrency=2)
    assert len(broker.claim_limited("a", spec, VERSION, 5, NOW).rows) == 2
    assert broker.claim_limited("a", spec, VERSION, 5, NOW).rows == []
    assert len(broker.claim_limited("b", spec, VERSION, 5, NOW).rows) == 2


def test_rate_limit_window_slides(broker: Broker) -> None:
    _fill(broker, 10)
    spec = Queue(Q, rate_limit=RateLimit(3, 1.0))
    got = broker.claim_limited("a", spec, VERSION, 2, NOW)
    assert len(got.rows) == 2 and got.retry_at is None  # took all it asked for
    got = broker.claim_limited("a", spec, VERSION, 5, NOW + 400)
    assert len(got.rows) == 1
    # The window is full until the first two starts leave it, one period after them.
    assert got.retry_at == NOW + 1000
    assert broker.claim_limited("a", spec, VERSION, 5, NOW + 999).rows == []
    got = broker.claim_limited("a", spec, VERSION, 5, NOW + 1000)
    assert len(got.rows) == 2  # the start at NOW+400 is still inside (NOW, NOW+1000]
    assert got.retry_at == NOW + 1400
    assert len(broker.claim_limited("a", spec, VERSION, 5, NOW + 1400).rows) == 1


def test_partitions_each_get_their_own_limits(broker: Broker) -> None:
    _fill(broker, 12, key=lambda i: f"p{i % 3}")
    spec = Queue(Q, concurrency=2, partitioned=True)
    got = broker.claim_limited("a", spec, VERSION, 10, NOW)
    by_key: dict[str | None, int] = {}
    for r in got.rows:
        by_key[r.partition_key] = by_key.get(r.partition_key, 0) + 1
    assert by_key == {"p0": 2, "p1": 2, "p2": 2}
    assert broker.claim_limited("b", spec, VERSION, 10, NOW).rows == []


def test_a_small_partition_is_served_in_the_first_round(broker: Broker) -> None:
    broker.enqueue(
        [
            queued(f"big-{i:04d}", queue=Q, created_at=NOW + i, partition_key="big")
            for i in range(300)
        ]
        + [queued("small-0", queue=Q, created_at=NOW + 1000, partition_key="small")],
        NOW,
    )
    spec = Queue(Q, rate_limit=RateLimit(1000, 1.0), partitioned=True)
    got = broker.claim_limited("a", spec, VERSION, 4, NOW + 2000)
    # Each partition's first before any second: the newest workflow of all is in the batch.
    assert sorted(r.id for r in got.rows) == ["big-0000", "big-0001", "big-0002", "small-0"]


def test_partition_walk_goes_round_every_partition(broker: Broker) -> None:
    keys = 100
    _fill(broker, keys, key=lambda i: f"k{i:03d}")
    spec = Queue(Q, concurrency=1, partitioned=True)
    seen: set[str] = set()
    for _ in range(10):
        got = broker.claim_limited("a", spec, VERSION, 1, NOW)
        seen |= {r.partition_key or "" for r in got.rows}
        # After a claim that stopped short of the end, another claim is due at once.
        if len(seen) < keys:
            assert got.retry_at is None or got.retry_at == NOW
    claimed = 10
    while claimed < keys:
        rows = broker.claim_limited("a", spec, VERSION, 50, NOW).rows
        assert rows, "every partition with room must eventually be claimed"
        seen |= {r.partition_key or "" for r in rows}
        claimed += len(rows)
    assert len(seen) == keys


def test_declarations_of_the_newest_version_win(broker: Broker) -> None:
    broker.declare_queues([Queue(Q, concurrency=5)], "v1", NOW)
    broker.declare_queues([Queue(Q, concurrency=9, partitioned=True)], "v2", NOW + 10)
    # An older version restarting does not take its limits back.
    broker.declare_queues([Queue(Q, concurrency=5)], "v1", NOW + 20)
    record = broker.queue_specs()[Q]
    assert record.app_version == "v2"
    assert record.queue == Queue(Q, concurrency=9, partitioned=True)
    broker.declare_queues([Queue(Q, rate_limit=RateLimit(10, 60.0))], "v3", NOW + 30)
    assert broker.queue_specs()[Q].queue == Queue(Q, rate_limit=RateLimit(10, 60.0))
    broker.register_queues(["other"], NOW)
    assert broker.queue_specs()["other"].queue == Queue("other")
    assert broker.queue_specs()["other"].app_version is None


@pytest.mark.parametrize("partitioned", [False, True], ids=["queue", "partitions"])
def test_concurrent_claimers_never_overshoot_together(
    broker: Broker, make_broker: Callable[[], Broker], partitioned: bool
) -> None:
    # Partitioned: one at a time in each of two partitions, so that a claimer's batch of two
    # spans both and any counting mistake shows at once.
    limit, threads, rows = (1 if partitioned else 3), 6, 240
    key = (lambda i: f"p{i % 2}") if partitioned else (lambda _: None)
    _fill(broker, rows, key=key)
    spec = Queue(Q, concurrency=limit, partitioned=partitioned)
    brokers = [make_broker() for _ in range(threads)]
    lock = threading.Lock()
    peak = 0
    done: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads, timeout=30)

    def run(i: int) -> None:
        nonlocal peak
        me, b = f"claimer-{i}", brokers[i]
        try:
            barrier.wait()
            while True:
                got = b.claim_limited(me, spec, VERSION, 2, NOW).rows
                if got:
                    # What the database holds PENDING right after a claim, when it is
                    # highest: an exact snapshot, so any value above the limit is a real
                    # overshoot (per partition when partitioned).
                    running = [d.running for d in b.queue_depths() if d.queue == Q]
                    with lock:
                        peak = max([peak, *running])
                    _finish(b, me, [r.id for r in got])
                with lock:
                    done.extend(r.id for r in got)
                    if not got and len(done) == rows:
                        return
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(done) == sorted(f"wf-{i:04d}" for i in range(rows))
    assert peak <= limit


def test_a_walk_that_reaches_the_end_starts_over_at_once_but_never_spins(broker: Broker) -> None:
    keys = MIN_KEYS_PER_CLAIM
    _fill(broker, 2 * keys, key=lambda i: f"k{i % keys:03d}")
    spec = Queue(Q, concurrency=1, partitioned=True)
    # One walk's worth of partitions looked at, one claimed: the walk stops on the last key.
    assert len(broker.claim_limited("a", spec, VERSION, 1, NOW).rows) == 1
    # Nothing follows the last key: this claim gets nothing, but the pass claimed work, so
    # it asks to be called again at once (not to wait up to a poll interval for news).
    at_end = broker.claim_limited("a", spec, VERSION, 2, NOW)
    assert at_end.rows == [] and at_end.retry_at == NOW
    rest = broker.claim_limited("a", spec, VERSION, 2 * keys, NOW)
    assert len(rest.rows) == keys - 1  # one per partition: every partition is at its limit
    # A whole pass that claims nothing waits for news instead of spinning: here the pass is
    # one full walk (32 keys) plus the empty look past the last key.
    idle = [broker.claim_limited("a", spec, VERSION, 1, NOW) for _ in range(2)]
    assert [c.rows for c in idle] == [[], []]
    assert [c.retry_at for c in idle] == [NOW, None]
