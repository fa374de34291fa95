"""Retention: deleting finished workflows once they are older than ``result_expires``.

The broker deletes one small batch per transaction (:meth:`Broker.prune`); :func:`prune`
repeats batches until one comes back short. Workers run it on their own thread every
``result_expires_interval`` seconds (:class:`Retention`), so a long backlog (a first run
after months) never delays a claim or a heartbeat by more than one batch; ``taskflow prune``
runs the same loop on demand.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from taskflow.broker.base import Broker, PruneResult
from taskflow.clock import Clock, now_ms
from taskflow.config import Config
from taskflow.errors import ConfigurationError

log = logging.getLogger("taskflow.retention")

JITTER = 0.1
"""A worker waits between ``interval`` and ``interval * (1 + JITTER)`` between passes, so
workers started together drift apart."""


def prune(
    broker: Broker,
    before_ms: int,
    *,
    batch: int,
    now: Callable[[], int],
    keep_going: Callable[[], bool] = lambda: True,
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
    on_batch: Callable[[PruneResult], object] | None = None,
) -> PruneResult:
    """Delete every finished workflow that finished before ``before_ms`` (and the rows that
    belong to it, and stale rows of the side tables), ``batch`` workflows per transaction,
    until a batch comes back short or ``keep_going()`` turns false; return the totals.

    ``now()`` is read for each batch; ``guard()`` is entered around each batch (a worker
    passes its database lock, so it can fork safely between batches); ``on_batch`` sees each
    batch's counts."""
    if batch < 1:
        raise ConfigurationError(f"the prune batch size must be at least 1, got {batch!r}")
    total = PruneResult()
    while True:
        with guard():
            done = broker.prune(before_ms, batch, now())
        total += done
        if on_batch is not None:
            on_batch(done)
        if not done.full(batch) or not keep_going():
            return total


def settings(conf: Config) -> tuple[int | None, int, float]:
    """``(result_expires in ms or None, batch, interval in seconds)`` from ``conf``, each
    checked: a bad value raises :class:`ConfigurationError` naming it."""
    expires = conf.result_expires_ms()
    batch = conf.result_expires_batch
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigurationError(
            f"result_expires_batch must be a whole number of at least 1, got {batch!r}"
        )
    interval = conf.result_expires_interval
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise ConfigurationError(
            f"result_expires_interval must be a positive number of seconds, got {interval!r}"
        )
    return expires, batch, float(interval)


class Retention:
    """A worker's retention: every ``interval`` seconds (plus jitter), one :func:`prune` of
    what finished more than ``expires_ms`` ago, on a thread of its own.

    Several workers may prune at once: Postgres skips rows another transaction locked,
    SQLite runs one writer at a time, so they only share the work. Time comes from
    ``clock`` (its ``monotonic`` schedules passes, its wall time sets the cutoff), so a test
    drives :meth:`run_due` with a fake clock and no thread."""

    def __init__(
        self,
        broker: Callable[[], Broker],
        clock: Clock,
        *,
        expires_ms: int,
        batch: int,
        interval: float,
        lock: threading.Lock | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._broker = broker
        self._clock = clock
        self.expires_ms = expires_ms
        self.batch = batch
        self.interval = interval
        self._lock = lock or threading.Lock()
        self._rng = rng
        # The first pass comes anywhere within one interval, so workers started together
        # (a deploy) do not all prune at the same moment.
        self._next = clock.monotonic() + interval * rng()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.total = PruneResult()
        """Everything this worker deleted so far."""

    @classmethod
    def from_conf(
        cls,
        broker: Callable[[], Broker],
        clock: Clock,
        conf: Config,
        lock: threading.Lock | None = None,
    ) -> Retention | None:
        """A retention for ``conf``, or None when ``result_expires`` turns it off. A bad
        setting raises :class:`ConfigurationError`."""
        expires, batch, interval = settings(conf)
        if expires is None:
            return None
        return cls(broker, clock, expires_ms=expires, batch=batch, interval=interval, lock=lock)

    @property
    def next_due(self) -> float:
        """When the next pass is due, on ``clock.monotonic()``."""
        return self._next

    def run_due(self) -> PruneResult | None:
        """Run a pass if one is due (then schedule the next); None if none was due."""
        if self._clock.monotonic() < self._next:
            return None
        try:
            return self.run_once()
        finally:
            self._next = self._clock.monotonic() + self.interval * (1 + JITTER * self._rng())

    def run_once(self) -> PruneResult:
        """One pass now: prune until a batch comes back short (or :meth:`stop`)."""
        before = now_ms(self._clock) - self.expires_ms
        done = prune(
            self._broker(),
            before,
            batch=self.batch,
            now=lambda: now_ms(self._clock),
            keep_going=lambda: not self._stop.is_set(),
            guard=lambda: self._lock,
        )
        self.total += done
        if done.workflows or done.debounces or done.queue_starts:
            log.info(
                "retention: removed %d finished workflow(s) older than %s s (%d steps, "
                "%d events, %d stream rows, %d messages), %d stale debounce row(s), "
                "%d old queue start(s)",
                done.workflows,
                f"{self.expires_ms / 1000:g}",
                done.steps,
                done.events,
                done.streams,
                done.messages,
                done.debounces,
                done.queue_starts,
            )
        return done

    # -- the thread ------------------------------------------------------------------------
    def start(self) -> None:
        """Run passes on a daemon thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="taskflow-retention", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(max(0.0, self._next - self._clock.monotonic())):
            try:
                self.run_due()
            except Exception:
                # A database outage must not end retention: the next pass tries again.
                log.exception("retention pass failed; trying again in %s s", self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, letting a batch in flight finish (at most ``timeout`` s)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            thread.join(timeout=timeout)


__all__ = ["JITTER", "Retention", "prune", "settings"]
