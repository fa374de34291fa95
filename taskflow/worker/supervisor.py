"""The worker's main loop: claim work for free slots, write outcomes in batches, heartbeat,
recover dead executors, and shut down without losing anything.

One thread (this loop) talks to the database for claims and finishes: whatever finished
while its previous round trip was in flight is written, together with the next claim, in
the next one. So an idle worker answers one workflow at a time, and a busy one batches.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

from taskflow import signals
from taskflow.app import Taskflow
from taskflow.beat import Beat
from taskflow.broker.base import Listener
from taskflow.clock import now_ms
from taskflow.errors import TimeLimitExceeded
from taskflow.heartbeat import Heartbeat
from taskflow.models import Finish, WorkflowRow
from taskflow.recovery import local_executor_id
from taskflow.retention import Retention
from taskflow.serialization import encode_error
from taskflow.status import Status
from taskflow.worker.banner import banner
from taskflow.worker.options import WorkerOptions
from taskflow.worker.pools import Lost, Pool, ProcessPool, ThreadPool
from taskflow.worker.queue_plan import QueuePlan
from taskflow.worker.sweeper import Sweeper

log = logging.getLogger("taskflow.worker")


class Worker:
    """One ``taskflow worker`` instance."""

    def __init__(self, app: Taskflow, options: WorkerOptions) -> None:
        self.app = app
        self.options = options
        self.worker_id = local_executor_id()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stop_level = 0  # 0 running, 1 warm, 2 cold
        self._warm_deadline: float | None = None
        self._notified = threading.Event()
        self._finishes: list[Finish] = []
        self._maybe_work = True
        self._next_tick = 0.0
        self._listener: Listener | None = None
        self._listen_thread: threading.Thread | None = None
        self._closing = threading.Event()
        # Started after the fork (threads must not exist then), stopped before the pool.
        self._beat = Beat(app, options.name) if options.beat else None
        self._beat_thread: threading.Thread | None = None
        self._db_lock = threading.Lock()
        self._sqlite = app.conf.resolved_database_url().startswith("sqlite")
        self.pool: Pool
        if options.pool == "prefork":
            self.pool = ProcessPool(app, options, self.worker_id)
            if self._sqlite:
                self.pool.quiesce = self._quiesce
        else:
            self.pool = ThreadPool(app, options, self.worker_id, self._wake_w)
        self.sweeper = Sweeper(app, self.worker_id, options.heartbeat_timeout)
        self.plan = QueuePlan(app, options.queues, self.worker_id)
        self.heartbeat = Heartbeat(
            lambda: app.broker,
            app.clock,
            executor_id=self.worker_id,
            kind="worker",
            name=options.name,
            app_version=lambda: app.app_version,
            interval=options.heartbeat_interval,
            queues=list(options.queues),
            concurrency=options.slots,
            pool=options.pool,
            # Read at each beat: the registry is complete only once the app is finalized.
            workflows=lambda: sorted(app.workflows),
            on_tick=self.sweeper.sweep,
            lock=self._db_lock,
        )
        # Its own thread, so a long backlog never delays a claim or a heartbeat by more than
        # one short batch. A bad result_expires setting fails here, before anything starts.
        self.retention = Retention.from_conf(
            lambda: app.broker, app.clock, app.conf, lock=self._db_lock
        )

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> int:
        """Run until shut down by a signal (or :meth:`stop`); return the exit code."""
        app = self.app
        app.finalize()
        broker = app.broker  # connects and migrates
        broker.register_queues(list(self.options.queues), now_ms(app.clock))
        self.plan.declare()
        log.info("%s", banner(app, self.options, self.worker_id))
        previous = self._install_signals()
        # Children are forked before any thread starts, so none inherits a held lock.
        self.pool.start()
        app.close()  # the parent's connections were made before fork; start clean
        self.heartbeat.start()
        self._start_listener()
        if self.retention is not None:
            self.retention.start()
        if self._beat is not None:
            self._beat_thread = self._beat.start_thread()
        signals.worker_ready.send(sender=self)
        log.info("%s ready.", self.options.name)
        try:
            self._loop()
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def stop(self, cold: bool = False) -> None:
        """Ask the loop to stop: warm (finish running work first) or cold."""
        self._stop_level = max(self._stop_level, 2 if cold else 1)
        self._wake()

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            cold = signum == signal.SIGQUIT or self._stop_level >= 1
            log.warning(
                "%s: %s",
                signal.Signals(signum).name,
                "cold shutdown" if cold else "warm shutdown (send it again for a cold one)",
            )
            self.stop(cold=cold)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            previous[sig] = signal.signal(sig, on_stop)
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *_: self._wake())
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        return previous

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"w")

    @contextlib.contextmanager
    def _quiesce(self) -> Iterator[None]:
        """No SQLite connection may be open in this process across a fork: stop the
        heartbeat and listener threads from using the database, close everything, fork."""
        with self._db_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            self.app.close()
            yield

    def _start_listener(self) -> None:
        # SQLite listeners poll and are closed around forks, so they wait in short slices
        # under the lock; a Postgres listener blocks on its socket, with no lock needed.
        wait_slice = 0.1 if self._sqlite else self.options.poll_interval

        def listen() -> None:
            while not self._closing.is_set():
                try:
                    with self._db_lock if self._sqlite else contextlib.nullcontext():
                        if self._listener is None:
                            self._listener = self.app.broker.listen()
                        woke = self._listener.wait(wait_slice)
                except Exception:
                    log.exception("listening for new work failed; polling meanwhile")
                    self._closing.wait(self.options.poll_interval)
                    woke = True
                if woke and not self._closing.is_set():
                    self._notified.set()
                    self._wake()
                if self._sqlite:
                    # Python locks are not fair: re-taking the lock at once would starve the
                    # heartbeat thread (and with it the sweep that recovers dead executors)
                    # for tens of seconds. A moment outside the lock lets a waiter in.
                    time.sleep(0.002)

        self._listen_thread = threading.Thread(target=listen, name="taskflow-listen", daemon=True)
        self._listen_thread.start()

    # -- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._drain_wake()
            self._collect()
            now = time.monotonic()
            if now >= self._next_tick:
                self._tick(now)
            if self._notified.is_set():
                self._notified.clear()
                self._maybe_work = True
            if self.plan.take_due(now_ms(self.app.clock)):
                self._maybe_work = True
            if self._stop_level >= 2:
                return
            if self._stop_level == 1:
                if self._warm_deadline is None:
                    self._warm_deadline = now + self.options.shutdown_timeout
                    log.info("waiting for %d running workflow(s)", len(self.pool.running()))
                if not self.pool.running() or now >= self._warm_deadline:
                    return
            want = self.pool.free() if self._maybe_work and self._stop_level == 0 else 0
            if want or self._finishes:
                claimed = self._claim(want)
                if claimed:
                    self.pool.submit(claimed)
                if len(claimed) < want:
                    self._maybe_work = False
                if self._finishes or (self._maybe_work and self.pool.free()):
                    continue  # more to write, or more to claim: no waiting
            self._wait(self._timeout())

    def _claim(self, want: int) -> list[WorkflowRow]:
        finishes, self._finishes = self._finishes, []
        broker, plan = self.app.broker, self.plan

        def claim_unlimited(limit: int, writing: list[Finish]) -> list[WorkflowRow]:
            now = now_ms(self.app.clock)
            rows = broker.claim(
                self.worker_id, plan.unlimited, self.app.app_version, limit, now, writing
            )
            # Written: a failure claiming the limited queues must not write them again.
            writing.clear()
            return rows

        try:
            return plan.claim(claim_unlimited, want, finishes)
        except Exception:
            # Keep the outcomes: they are written with the next claim once the database
            # answers again.
            self._finishes = finishes + self._finishes
            log.exception("claiming work failed; retrying")
            self._wait(min(1.0, self.options.poll_interval))
            return []

    def _collect(self) -> None:
        done, lost = self.pool.collect()
        for item in done:
            if item.finish is not None:
                self._finishes.append(item.finish)
            elif item.failed:
                self._release([item.id], count_attempt=True)
        if done:
            self._maybe_work = True
        for batch in lost:
            self._handle_lost(batch)

    def _handle_lost(self, lost: Lost) -> None:
        timed_out = set(lost.timed_out)
        for wid in lost.timed_out:
            wf_name = "?"
            limit = None
            row = self.app.broker.get_workflow(wid)
            if row is not None:
                wf_name = row.name
                wf = self.app._workflows.get(row.name)
                limit = wf.time_limit if wf is not None else None
            exc = TimeLimitExceeded(
                f"workflow {wid!r} ({wf_name}) exceeded its time_limit of {limit}s; the "
                "process running it was ended"
            )
            self._finishes.append(Finish(wid, Status.ERROR, None, encode_error(exc)))
        others = [wid for wid in lost.ids if wid not in timed_out]
        if others:
            # A crash counts a recovery attempt; a kill for a sibling's time limit does not.
            self._release(others, count_attempt=lost.crashed)
        self._maybe_work = True

    def _release(self, ids: list[str], *, count_attempt: bool) -> None:
        try:
            self.app.broker.release(
                self.worker_id, ids, now_ms(self.app.clock), count_attempt=count_attempt
            )
        except Exception:
            # They stay PENDING under this worker's id; the sweep of another worker (or of
            # this one after a restart) recovers them.
            log.exception("could not hand back %d workflow(s)", len(ids))

    def _tick(self, now: float) -> None:
        try:
            tick = self.app.broker.tick(now_ms(self.app.clock))
        except Exception:
            log.exception("queue maintenance failed")
            self._next_tick = now + self.options.poll_interval
            return
        if tick.timed_out:
            log.warning("cancelled %d workflow(s) whose timeout passed", tick.timed_out)
        if tick.expired:
            log.info("cancelled %d workflow(s) that expired before they started", tick.expired)
        # Promoted delayed work, or just the polling fallback: look for work at least this
        # often.
        self._maybe_work = True
        try:
            self.plan.refresh()
        except Exception:
            log.exception("reading the queue limits failed; keeping the previous ones")
        next_tick = now + self.options.poll_interval
        if tick.next_due is not None:
            due_in = (tick.next_due - now_ms(self.app.clock)) / 1000
            next_tick = min(next_tick, now + max(due_in, 0.001))
        self._next_tick = next_tick

    def _timeout(self) -> float:
        now = time.monotonic()
        timeout = max(0.0, self._next_tick - now)
        deadline = self.pool.next_deadline()
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - now))
        retry = self.plan.next_retry()
        if retry is not None and self.pool.free():
            timeout = min(timeout, max(0.0, (retry - now_ms(self.app.clock)) / 1000))
        if self._warm_deadline is not None:
            timeout = min(timeout, max(0.0, self._warm_deadline - now))
        return timeout

    def _wait(self, timeout: float) -> None:
        wait([self._wake_r, *self.pool.handles()], timeout)

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    # -- shutdown --------------------------------------------------------------------------
    def _shutdown(self) -> None:
        signals.worker_shutdown.send(sender=self)
        cold = self._stop_level >= 2 or bool(self.pool.running())
        self._closing.set()
        if self.retention is not None:
            self.retention.stop()
        if self._beat is not None and self._beat_thread is not None:
            self._beat.stop()
            self._beat_thread.join(timeout=self.options.poll_interval + 5)
        self._collect()  # outcomes that arrived before the kill are kept, not re-run
        left = self.pool.stop(0 if cold else 5.0)
        self._collect()
        if self._finishes:
            self._claim(0)
        if left:
            log.warning("handing back %d running workflow(s)", len(left))
            self._release(left, count_attempt=False)
        self.heartbeat.stop(remove=True)
        if self._listen_thread is not None:
            self._listen_thread.join(timeout=self.options.poll_interval + 1)
        if self._listener is not None:
            self._listener.close()
        self.app.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        signal.set_wakeup_fd(-1)
        log.info("%s stopped.", self.options.name)


__all__ = ["Worker"]
