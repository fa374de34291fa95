"""Queue flow control, proven with real ``taskflow worker`` processes on :mod:`flowapp`.

Every workflow body appends a ``start`` and an ``end`` line (wall time, pid, parent pid) to
a file in the work folder, from inside the body, so the assertions read what really ran and
when, not what the database says was claimed (except for rate limits, where the claim time
is the contract and is also checked).

What each limit test proves, on Postgres with three worker instances (two from the start,
a third joining mid-run, each ``-c 2``: six prefork children in all), and on SQLite with one
instance:

- ``concurrency``: never more workflow bodies of the queue running at once than the limit;
- ``worker_concurrency``: the same per worker instance (grouped by the children's parent);
- ``rate_limit``: never more claims (``started_at``) in any window of the period, body starts
  likewise up to a dispatch tolerance, and the queue drains at close to the allowed rate;
- ``partitioned``: the limit holds per partition key while keys together exceed it, and a
  key with one workflow is not stuck behind a key with hundreds waiting.

Then priority order, the deduplication race between producer processes, and delay and
expiry across a worker restart. Limits are enforced by the workers from the declarations
they record in the database, so these tests use the public API only.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from taskflow import Status, WorkflowCancelledError, WorkflowHandle

from . import flowapp
from .helpers import (
    PROCESS_LIMIT,
    REPO_ROOT,
    WorkerProcess,
    Workers,
    status_counts,
    wait_for,
    worker_env,
    workflow_ids,
)

pytestmark = pytest.mark.slow

FLOW_APP = "tests.integration.flowapp:app"
DRAIN_LIMIT = 25.0
"""Seconds a test's workflows may take to drain once enqueued (each test stays under ~30 s)."""
FINISHED = frozenset(s.value for s in Status if s.is_finished)
MAX_PRIORITY = 2_147_483_647

DISPATCH_TOLERANCE = 0.2
"""Seconds a body may start after its claim (``started_at``): the claim's round trip, the
hand-over to a prefork child and a thread, on a loaded 2-core machine. Measured without
rate limiting while three workers started at once on 2 cores: median 4 ms, max 66 ms."""

Producer = Callable[[str], flowapp.FlowApp]


@pytest.fixture
def flow_producer() -> Iterator[Producer]:
    """Factory of producer apps with :mod:`flowapp`'s queues and workflow; closed at the end."""
    made: list[flowapp.FlowApp] = []

    def factory(database_url: str) -> flowapp.FlowApp:
        built = flowapp.create_app(database_url)
        made.append(built)
        return built

    yield factory
    for built in made:
        built.app.close()


# -- the records ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One execution of a workflow body, from its ``start`` and ``end`` records."""

    label: str
    workflow_id: str
    start: float
    end: float
    pid: int
    ppid: int
    """The worker instance (the parent of the prefork child that ran it)."""


def _record_lines(workdir: Path) -> list[list[str]]:
    path = workdir / flowapp.RECORDS
    if not path.exists():
        return []
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def count_records(workdir: Path, event: str, prefix: str = "") -> int:
    """How many ``event`` lines were recorded for labels starting with ``prefix``."""
    return sum(1 for f in _record_lines(workdir) if f[0] == event and f[1].startswith(prefix))


def read_runs(workdir: Path) -> list[Run]:
    """Every body execution, in start order. Fails if a body ran twice or never ended."""
    starts: dict[str, list[str]] = {}
    ends: dict[str, float] = {}
    for fields in _record_lines(workdir):
        event, _label, wid = fields[:3]
        if event == flowapp.START:
            assert wid not in starts, f"workflow {wid} ({fields[1]}) started twice"
            starts[wid] = fields
        else:
            assert wid not in ends, f"workflow {wid} ({fields[1]}) ended twice"
            ends[wid] = float(fields[3])
    assert starts.keys() == ends.keys(), (
        f"started but never ended: {sorted(starts.keys() - ends.keys())}; "
        f"ended without a start: {sorted(ends.keys() - starts.keys())}"
    )
    runs = [
        Run(f[1], wid, float(f[3]), ends[wid], int(f[4]), int(f[5])) for wid, f in starts.items()
    ]
    return sorted(runs, key=lambda r: r.start)


def peak_overlap(runs: Iterable[Run]) -> int:
    """The largest number of ``[start, end]`` intervals open at the same instant.

    A sweep over the start (+1) and end (-1) events in time order. At equal times ends come
    first: a body's end is recorded before its workflow is finished in the database, and a
    slot is only reused after that, so a start at the very instant of another's end can only
    be a tie of the clock's resolution, never real overlap.
    """
    listed = list(runs)  # may be a generator: it is read twice
    events = sorted([(r.start, 1) for r in listed] + [(r.end, -1) for r in listed])
    open_now = peak = 0
    for _, delta in events:
        open_now += delta
        peak = max(peak, open_now)
    return peak


def max_in_window(times: Iterable[float], window: float) -> int:
    """The most ``times`` inside any half-open window ``[t, t + window)``.

    The fullest window can be taken to start at one of the times, so a two-pointer sweep over
    the sorted times finds it. Half-open: two starts exactly one period apart belong to
    different windows (a limit of N per second allows N at 0.0 and N more at 1.0).
    """
    ordered = sorted(times)
    peak = 0
    last = 0
    for first, opened in enumerate(ordered):
        last = max(last, first)
        while last < len(ordered) and ordered[last] < opened + window:
            last += 1
        peak = max(peak, last - first)
    return peak


def test_the_measures_themselves() -> None:
    """The sweeps that every limit test relies on, on hand-made data."""

    def run(start: float, end: float) -> Run:
        return Run("x", f"{start}-{end}", start, end, 1, 1)

    assert peak_overlap([]) == 0
    assert peak_overlap([run(0, 1), run(1, 2)]) == 1  # end before start at a tie
    assert peak_overlap([run(0, 3), run(1, 2), run(1.5, 4), run(3.5, 5)]) == 3
    assert peak_overlap(r for r in [run(0, 2), run(1, 3)]) == 2  # a generator, read twice
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 0.999, 1.0, 1.5], 1.0) == 3  # half-open windows
    assert max_in_window([0, 1000, 2000], 1000) == 1
    assert max_in_window([5, 1, 3, 2, 4], 2) == 2  # unsorted input


def sleep_ms(i: int, low: int = 20, high: int = 50) -> int:
    """A spread of body durations in ``[low, high]`` ms, the same on every run."""
    return low + (i * 7919) % (high - low + 1)


# -- workers -------------------------------------------------------------------------------------
def start_workers(
    workers: Workers, database_url: str, queue: str, count: int, *, threads: int | None = None
) -> list[WorkerProcess]:
    """Start ``count`` instances of ``taskflow worker -c 2 -Q queue`` together (their first
    claims race each other), then wait until each is ready."""
    started = [
        workers.start(
            database_url, "-c", "2", "-Q", queue, app=FLOW_APP, ready=False, threads=threads
        )
        for _ in range(count)
    ]
    for worker in started:
        worker.wait_ready()
    return started


def wait_drained(
    database_url: str, total: int, running: list[WorkerProcess], limit: float = DRAIN_LIMIT
) -> None:
    """Wait until all ``total`` workflows of the database finished (failing at once if a
    worker dies), then require every one to be SUCCESS."""

    def drained() -> bool:
        for worker in running:
            worker.assert_alive()
        counts = status_counts(database_url)
        return sum(n for status, n in counts.items() if status in FINISHED) >= total

    try:
        wait_for(drained, f"{total} workflows to finish", limit, interval=0.05)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; statuses now: {dict(status_counts(database_url))}") from None
    assert status_counts(database_url) == Counter({Status.SUCCESS.value: total})


def assert_ran_on(runs: list[Run], running: list[WorkerProcess]) -> Counter[int]:
    """Every body ran in a child of one of ``running``; return how many per worker pid."""
    per_worker = Counter(r.ppid for r in runs)
    pids = {w.pid for w in running}
    assert set(per_worker) <= pids, f"bodies ran under {set(per_worker)}, workers are {pids}"
    names = {w.pid: w.name for w in running}
    print("\nbodies per worker:", {names[p]: n for p, n in sorted(per_worker.items())})
    return per_worker


# -- scenarios, shared by the Postgres and SQLite tests -----------------------------------------
def check_concurrency(
    url: str, workers: Workers, workdir: Path, producer: Producer, total: int, instances: int
) -> None:
    """``concurrency=3``: at no instant more than 3 bodies of the queue run, over all
    workers; the queue drains. With ``instances`` > 1, one more worker joins mid-run."""
    fa = producer(url)
    # The decorator's queue (LIMITED); enqueued before any worker runs, so the workers'
    # first claims see hundreds waiting and race each other for them.
    fa.interval.delay_many([(f"lim-{i}", sleep_ms(i)) for i in range(total)])
    running = start_workers(workers, url, flowapp.LIMITED, instances)
    if instances > 1:
        wait_for(
            lambda: count_records(workdir, flowapp.END) >= total // 10,
            "a tenth of the workflows to finish before the late worker starts",
            DRAIN_LIMIT,
        )
        running += start_workers(workers, url, flowapp.LIMITED, 1)
    wait_drained(url, total, running)

    runs = read_runs(workdir)
    assert len(runs) == total
    assert_ran_on(runs, running)
    peak = peak_overlap(runs)
    limit = flowapp.LIMITED_CONCURRENCY
    assert peak <= limit, f"{peak} workflows of a concurrency={limit} queue ran at once"
    # Not vacuous: with 8+ free slots per worker and hundreds waiting, the limit is reached.
    assert peak == limit, f"never more than {peak} at once: the limit of {limit} was not reached"


def check_rate_limit(
    url: str, workers: Workers, workdir: Path, producer: Producer, total: int, instances: int
) -> None:
    """``rate_limit=(50, 1.0)``: no more than 50 claims in any 1 s window (database
    ``started_at``, exactly), nor body starts in any window shortened by the dispatch
    tolerance; the queue drains within 1.5x the shortest time the limit allows."""
    count, period = flowapp.RATE_COUNT, flowapp.RATE_PERIOD
    fa = producer(url)
    handles = fa.interval.delay_many([(f"rate-{i}", 0) for i in range(total)], queue=flowapp.RATED)
    running = start_workers(workers, url, flowapp.RATED, instances)
    if instances > 1:
        wait_for(
            lambda: count_records(workdir, flowapp.START) >= total // 5,
            "a fifth of the workflows to start before the late worker starts",
            DRAIN_LIMIT,
        )
        running += start_workers(workers, url, flowapp.RATED, 1)
    wait_drained(url, total, running)

    runs = {r.workflow_id: r for r in read_runs(workdir)}
    assert len(runs) == total
    assert_ran_on(list(runs.values()), running)
    claimed_ms: dict[str, int] = {}
    for handle in handles:
        started = handle.info().started_at
        assert started is not None, f"{handle.id} finished without a started_at"
        claimed_ms[handle.id] = round(started.timestamp() * 1000)

    # 1. Claims, exactly: started_at is the claim time, in whole ms of the workers' clock.
    in_window = max_in_window(claimed_ms.values(), period * 1000)
    assert in_window <= count, f"{in_window} claims within {period}s; the limit is {count}"

    # 2. Body starts. A body starts a little after its claim (the claim's round trip, the
    # hand-over to a child, a thread picking it up): lag in [0, DISPATCH_TOLERANCE]. Then
    # starts inside a window of (period - tolerance) were all claimed inside a window of
    # the period, so at most `count` of them: the limit, checked on what really ran.
    lags = {wid: runs[wid].start - ms / 1000 for wid, ms in claimed_ms.items()}
    worst = max(lags, key=lambda wid: abs(lags[wid]))
    print(f"\ndispatch lag: max {max(lags.values()) * 1000:.1f} ms")
    # started_at is truncated to the ms, so a body never starts before it.
    assert -0.0005 <= lags[worst] <= DISPATCH_TOLERANCE, (
        f"{worst} started its body {lags[worst]:.3f}s after its claim; the tolerance is "
        f"{DISPATCH_TOLERANCE}s"
    )
    body_window = period - DISPATCH_TOLERANCE
    in_window = max_in_window((r.start for r in runs.values()), body_window)
    assert in_window <= count, f"{in_window} bodies started within {body_window}s (limit {count})"

    # 3. Drain speed. The k-th claim is at least a period after the (k-count)-th, so the
    # span from the first claim to the last is at least this; a limiter that holds the rate
    # keeps close to it.
    shortest = (total - 1) // count * period
    claims = sorted(claimed_ms.values())
    span = (claims[-1] - claims[0]) / 1000
    print(f"drained {total} in {span:.2f}s; the limit allows {shortest:.2f}s at best")
    assert span >= shortest, f"{total} claims in {span:.2f}s: faster than the limit allows"
    assert span <= 1.5 * shortest, (
        f"{total} claims took {span:.2f}s; at {count}/{period}s they need {shortest:.2f}s: "
        "the queue drains far below its allowed rate"
    )


def check_partitions(
    url: str,
    workers: Workers,
    workdir: Path,
    producer: Producer,
    big: int,
    others: int,
    instances: int,
) -> None:
    """``partitioned=True, concurrency=2``: at most 2 bodies per partition key while the
    keys together run more than 2; a key with one workflow enqueued behind ``big`` waiting
    ones in another key starts within the first claim rounds."""
    fa = producer(url)
    running = start_workers(workers, url, flowapp.PARTS, min(instances, 2))
    fa.interval.delay_many(
        [(f"big-{i}", sleep_ms(i)) for i in range(big)], queue=flowapp.PARTS, partition_key="big"
    )
    for key in ("p1", "p2"):
        fa.interval.delay_many(
            [(f"{key}-{i}", sleep_ms(i)) for i in range(others)],
            queue=flowapp.PARTS,
            partition_key=key,
        )
    wait_for(
        lambda: count_records(workdir, flowapp.END, "big-") >= 4,
        "4 workflows of partition 'big' to finish",
        DRAIN_LIMIT,
    )
    enqueued_at = time.time()
    fa.interval.apply_async(("small-0", 0), queue=flowapp.PARTS, partition_key="small")
    total = big + 2 * others + 1
    if instances > 2:
        wait_for(
            lambda: count_records(workdir, flowapp.END, "big-") >= big // 3,
            "a third of partition 'big' to finish before the late worker starts",
            DRAIN_LIMIT,
        )
        running += start_workers(workers, url, flowapp.PARTS, 1)
    wait_drained(url, total, running)

    runs = read_runs(workdir)
    assert len(runs) == total
    assert_ran_on(runs, running)
    by_key: defaultdict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_key[run.label.rsplit("-", 1)[0]].append(run)
    peaks = {key: peak_overlap(key_runs) for key, key_runs in by_key.items()}
    limit = flowapp.PARTS_CONCURRENCY
    assert all(p <= limit for p in peaks.values()), f"per-partition peaks {peaks} (limit {limit})"
    assert peaks["big"] == limit, f"partition 'big' never ran {limit} at once: {peaks}"
    overall = peak_overlap(runs)
    assert overall > limit, (
        f"at most {overall} ran at once over all partitions: the limit of {limit} acted on the "
        "whole queue, not per partition key"
    )

    # Fairness. Every claim round takes one workflow from each key with waiting work before
    # a second from any. Once 'small' is committed, a round that takes a 'big' workflow must
    # take 'small' too; 'big' can start one only when one of its 2 running ones finishes,
    # and each finish is written together with the worker's next claim. So 'small' starts
    # within a round or two of the next 'big' finishes; 10 leaves room for the rounds that
    # were already in flight on each worker at the enqueue, and is still far below the ~big
    # finishes a FIFO claim would make it wait.
    small = by_key["small"][0]
    big_ends = sorted(r.end for r in by_key["big"] if r.end > enqueued_at)
    assert len(big_ends) >= 10, "partition 'big' ran out before the fairness check applies"
    assert small.start < big_ends[9], (
        f"partition 'small' started {small.start - enqueued_at:.3f}s after its enqueue, after "
        f"{sum(1 for e in big_ends if e < small.start)} workflows of 'big' finished (bound: 10)"
    )


PRIORITY_LEVELS: tuple[int | None, ...] = (None, 1, 3, 5, MAX_PRIORITY)
PER_LEVEL = 5


def check_priority(url: str, workers: Workers, workdir: Path, producer: Producer) -> None:
    """One strictly sequential worker, started after everything was enqueued: no priority
    first in enqueue order, then ascending priority, FIFO within each."""
    fa = producer(url)
    levels = len(PRIORITY_LEVELS)
    count = levels * PER_LEVEL
    # A scrambled enqueue order: index i gets level (3i mod 5), so the levels interleave.
    priorities = [PRIORITY_LEVELS[(i * 3) % levels] for i in range(count)]
    for i, priority in enumerate(priorities):
        fa.interval.apply_async((f"prio-{i}", 0), queue=flowapp.PRIO, priority=priority)
    expected = sorted(range(count), key=lambda i: (priorities[i] or 0, i))

    # -c 1 and one thread: one slot, so the start order is the claim order.
    worker = workers.start(url, "-c", "1", "-Q", flowapp.PRIO, app=FLOW_APP, threads=1)
    wait_drained(url, count, [worker])

    runs = read_runs(workdir)
    assert peak_overlap(runs) == 1, "the worker was not sequential"
    started = [int(r.label.removeprefix("prio-")) for r in runs]
    shown = [(i, priorities[i]) for i in started]
    assert started == expected, f"start order (index, priority): {shown}"


# -- Postgres -----------------------------------------------------------------------------------
@pytest.mark.postgres
def test_concurrency_limit_holds_across_workers(
    postgres_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    check_concurrency(postgres_url, workers, worker_dir, flow_producer, total=300, instances=2)


@pytest.mark.postgres
def test_worker_concurrency_limit_holds_per_instance(
    postgres_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    """``worker_concurrency=2``, no global limit: at most 2 bodies at once per worker
    instance (all its prefork children together), while instances run side by side."""
    total = 300
    fa = flow_producer(postgres_url)
    fa.interval.delay_many(
        [(f"pw-{i}", sleep_ms(i, 30, 60)) for i in range(total)], queue=flowapp.PER_WORKER
    )
    running = start_workers(workers, postgres_url, flowapp.PER_WORKER, 2)
    wait_for(
        lambda: count_records(worker_dir, flowapp.END) >= total // 10,
        "a tenth of the workflows to finish before the late worker starts",
        DRAIN_LIMIT,
    )
    running += start_workers(workers, postgres_url, flowapp.PER_WORKER, 1)
    wait_drained(postgres_url, total, running)

    runs = read_runs(worker_dir)
    assert len(runs) == total
    per_worker = assert_ran_on(runs, running)
    limit = flowapp.PER_WORKER_CONCURRENCY
    peaks = {ppid: peak_overlap(r for r in runs if r.ppid == ppid) for ppid in sorted(per_worker)}
    assert all(p <= limit for p in peaks.values()), f"per-worker peaks {peaks} (limit {limit})"
    # With no global limit a ready worker with free slots takes waiting work, so the late
    # one runs some: the limit is then shown on three instances, not two.
    assert len(per_worker) == 3, f"not every worker ran workflows: {per_worker}"
    assert max(peaks.values()) == limit, f"no worker ever ran {limit} at once: {peaks}"
    overall = peak_overlap(runs)
    assert overall > limit, (
        f"at most {overall} ran at once over all workers: the limit acted globally, "
        "not per worker instance"
    )


@pytest.mark.postgres
def test_rate_limit_holds_across_workers(
    postgres_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    check_rate_limit(postgres_url, workers, worker_dir, flow_producer, total=300, instances=2)


@pytest.mark.postgres
def test_partitioned_limits_are_per_key_and_fair(
    postgres_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    check_partitions(
        postgres_url, workers, worker_dir, flow_producer, big=300, others=30, instances=3
    )


@pytest.mark.postgres
def test_priority_order(
    postgres_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    check_priority(postgres_url, workers, worker_dir, flow_producer)


@pytest.mark.postgres
def test_worker_without_queues_option_serves_every_app_queue(
    postgres_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    """No ``-Q``: the worker serves all the queues its app declares (not only ``default``),
    limited and partitioned ones included."""
    fa = flow_producer(postgres_url)
    for queue in flowapp.ALL_QUEUES:
        key = "k" if queue == flowapp.PARTS else None
        fa.interval.apply_async((f"any-{queue}", 0), queue=queue, partition_key=key)
    worker = workers.start(postgres_url, "-c", "1", app=FLOW_APP)
    # A worker that serves them at all runs 7 no-op workflows in well under a second.
    wait_drained(postgres_url, len(flowapp.ALL_QUEUES), [worker], limit=10.0)
    assert sorted(r.label for r in read_runs(worker_dir)) == sorted(
        f"any-{queue}" for queue in flowapp.ALL_QUEUES
    )


RACERS = 20


def race_dedup(url: str, workdir: Path, dedup_id: str) -> list[tuple[str, dict[str, str]]]:
    """Run :data:`RACERS` producer processes (alternately ``reject`` and
    ``return_existing``) that enqueue with ``dedup_id`` at the same moment: each connects and
    creates its ready file, and all go when the test creates the go file. Return each
    policy with its outcome."""
    go = workdir / f"go-{dedup_id}"
    policies = ["reject" if i % 2 == 0 else "return_existing" for i in range(RACERS)]
    procs: list[subprocess.Popen[str]] = []
    ready: list[Path] = []
    env = worker_env(url, workdir)
    try:
        for i, policy in enumerate(policies):
            ready.append(workdir / f"ready-{dedup_id}-{i}")
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.integration.flowapp",
                        "race",
                        policy,
                        dedup_id,
                        str(ready[i]),
                        str(go),
                    ],
                    env=env,
                    cwd=REPO_ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )

        def all_ready() -> bool:
            for proc in procs:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    raise AssertionError(f"a producer exited early:\n{out}\n{err}")
            return all(path.exists() for path in ready)

        wait_for(all_ready, f"{RACERS} producers to connect", PROCESS_LIMIT)
        go.write_text("", encoding="utf-8")
        outcomes: list[tuple[str, dict[str, str]]] = []
        for policy, proc in zip(policies, procs, strict=True):
            out, err = proc.communicate(timeout=PROCESS_LIMIT)
            assert proc.returncode == 0, f"producer exited with {proc.returncode}:\n{out}\n{err}"
            outcomes.append((policy, json.loads(out.strip().splitlines()[-1])))
        return outcomes
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.mark.postgres
def test_dedup_race_between_producer_processes(
    postgres_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    """20 processes enqueue with the same dedup_id at once: one workflow exists; every
    ``reject`` loser gets WorkflowDeduplicatedError naming it, every ``return_existing`` one
    gets its id. Once it finished, the dedup id is free again."""
    outcomes = race_dedup(postgres_url, worker_dir, "same")
    ids = workflow_ids(postgres_url)
    assert len(ids) == 1, f"{len(ids)} workflows exist after the race: {outcomes}"
    (winner,) = ids
    created = [o for _, o in outcomes if "id" in o]
    refused = [(p, o) for p, o in outcomes if "id" not in o]
    assert all(o["id"] == winner for o in created), outcomes
    for policy, outcome in refused:
        assert policy == "reject", f"return_existing raised: {outcome}"
        assert outcome["error"] == "WorkflowDeduplicatedError", outcome
        assert winner in outcome["message"], f"the error does not name {winner}: {outcome}"
    # Exactly one enqueue created it: all return_existing callers got the id (one of them
    # maybe as the creator), and all reject callers but at most one were refused.
    rejecting = sum(1 for p, _ in outcomes if p == "reject")
    assert len(refused) in (rejecting, rejecting - 1), outcomes

    fa = flow_producer(postgres_url)
    worker = workers.start(postgres_url, "-c", "1", "-Q", flowapp.DEDUP, app=FLOW_APP)
    fa.app.retrieve(winner).get(timeout=PROCESS_LIMIT)
    again = fa.interval.apply_async(("dedup-again", 0), queue=flowapp.DEDUP, dedup_id="same")
    assert again.id != winner
    again.get(timeout=PROCESS_LIMIT)
    worker.assert_alive()
    assert sorted(workflow_ids(postgres_url)) == sorted([winner, again.id])


COUNTDOWNS = (4.0, 5.0)
"""Seconds: long enough for the first worker to stop and the second to start before the
first is due (checked), so both fall due while only the second worker runs."""
DUE_SLACK = 1.0
"""Seconds after its due time within which a delayed workflow must start."""


@pytest.mark.postgres
def test_delay_and_expires_across_a_worker_restart(
    postgres_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    """Delayed workflows enqueued while one worker runs start on time on the next one;
    a workflow whose ``expires`` passes while no worker runs is CANCELLED and never runs."""
    fa = flow_producer(postgres_url)
    first = workers.start(postgres_url, "-c", "1", "-Q", flowapp.TIMED, app=FLOW_APP)
    delayed: list[tuple[WorkflowHandle[None], float, float]] = []
    for i, countdown in enumerate(COUNTDOWNS):
        before = time.time()
        handle = fa.interval.apply_async(
            (f"delayed-{i}", 0), queue=flowapp.TIMED, countdown=countdown
        )
        delayed.append((handle, before + countdown, time.time() + countdown))
        assert handle.status is Status.DELAYED
    first.signal(signal.SIGTERM)  # warm shutdown
    assert first.wait_exit() == 0, first.log()

    # No worker runs now: these expire unseen. One plain, one delayed past its expiry.
    expiring = fa.interval.apply_async(("expired-0", 0), queue=flowapp.TIMED, expires=0.3)
    expiring_delayed = fa.interval.apply_async(
        ("expired-1", 0), queue=flowapp.TIMED, countdown=1.0, expires=0.3
    )
    expired_at = time.time() + 0.3
    wait_for(lambda: time.time() > expired_at + 0.1, "the expiry to pass")
    assert expiring.status is Status.ENQUEUED  # nothing runs the queue to notice yet

    second = workers.start(postgres_url, "-c", "1", "-Q", flowapp.TIMED, app=FLOW_APP)
    first_due = min(earliest for _, earliest, _ in delayed)
    assert time.time() < first_due, "setup too slow: raise COUNTDOWNS"
    for handle in (expiring, expiring_delayed):
        with pytest.raises(WorkflowCancelledError):
            handle.get(timeout=PROCESS_LIMIT)
    for handle, _, _ in delayed:
        handle.get(timeout=PROCESS_LIMIT)
    second.assert_alive()

    runs = {r.label: r for r in read_runs(worker_dir)}
    assert "expired-0" not in runs and "expired-1" not in runs, "an expired workflow ran"
    for i, (_, earliest, latest) in enumerate(delayed):
        run = runs[f"delayed-{i}"]
        assert run.ppid == second.pid
        assert run.start >= earliest, f"delayed-{i} started {earliest - run.start:.3f}s early"
        assert run.start <= latest + DUE_SLACK, (
            f"delayed-{i} started {run.start - latest:.3f}s after it was due"
        )
    assert status_counts(postgres_url) == Counter(
        {Status.SUCCESS.value: len(COUNTDOWNS), Status.CANCELLED.value: 2}
    )


# -- SQLite: one worker instance ----------------------------------------------------------------
def test_concurrency_limit_sqlite(
    sqlite_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    check_concurrency(sqlite_url, workers, worker_dir, flow_producer, total=100, instances=1)


def test_rate_limit_sqlite(
    sqlite_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    check_rate_limit(sqlite_url, workers, worker_dir, flow_producer, total=150, instances=1)


def test_partitioned_limits_sqlite(
    sqlite_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    check_partitions(
        sqlite_url, workers, worker_dir, flow_producer, big=100, others=20, instances=1
    )


def test_priority_order_sqlite(
    sqlite_url: str, workers: Workers, worker_dir: Path, flow_producer: Producer
) -> None:
    check_priority(sqlite_url, workers, worker_dir, flow_producer)
