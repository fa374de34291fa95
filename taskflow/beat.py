"""The beat: one leader at a time fires schedules on time.

Any number of beats may run (``taskflow beat``, ``taskflow worker -B``); they elect a leader
through a lease row in the database. The leader renews its lease every
``beat_max_interval`` seconds and fires due schedules; the others poll for an expired lease
and take over within ``beat_lease`` seconds of a leader's death. Firing is fenced by the
lease term and guarded by each schedule's expected ``next_fire_at`` (see
:meth:`Broker.fire_schedule`), so a leader that was frozen and comes back after losing its
lease fires nothing, and a time is never fired twice.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from types import FrameType
from typing import TYPE_CHECKING

from taskflow.clock import now_ms
from taskflow.errors import DatabaseConnectionError
from taskflow.schedules import CatchUp

if TYPE_CHECKING:
    from taskflow.app import Taskflow

log = logging.getLogger("taskflow.beat")


class Beat:
    """A beat for ``app``: elects itself leader or stands by, and while leading fires what
    is due. :meth:`tick` does one round (tests drive it with an injected clock);
    :meth:`run` loops until :meth:`stop`."""

    def __init__(self, app: Taskflow, name: str | None = None) -> None:
        self.app = app
        conf = app.conf
        self.holder = (
            f"{name or 'beat'}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        )
        self.lease_ms = int(conf.beat_lease * 1000)
        self.max_interval = conf.beat_max_interval
        self.catch_up = CatchUp(
            grace=conf.beat_misfire_grace_time,
            window=conf.beat_backfill_window.total_seconds(),
        )
        self.term: int | None = None
        self._stop = threading.Event()

    @property
    def leading(self) -> bool:
        """Whether this beat held the lease at its last tick."""
        return self.term is not None

    def tick(self) -> float:
        """Take or renew the lease; when leading, fire what is due. Returns how many seconds
        to wait before the next tick (until the next fire, at most ``beat_max_interval``)."""
        app = self.app
        broker = app.broker
        term = broker.acquire_beat_lease(self.holder, self.lease_ms, now_ms(app.clock))
        if term is None:
            if self.term is not None:
                log.warning("beat %s lost the leadership", self.holder)
            self.term = None
            return self.max_interval
        if term != self.term:
            log.info("beat %s leads (term %d)", self.holder, term)
            self.term = term
            declared = app.schedules.sync_code()
            log.info("beat: %d schedule(s) declared in code are in the database", declared)
        fired = app.schedules.fire_due((self.holder, term), self.catch_up)
        if fired:
            log.info("beat fired %d workflow(s)", fired)
        due = broker.next_schedule_due()
        if due is None:
            return self.max_interval
        wait = (due - now_ms(app.clock)) / 1000
        return min(max(wait, 0.0), self.max_interval)

    def run(self) -> None:
        """Tick until :meth:`stop`; a database outage is logged and retried, never fatal.
        On the way out, the lease is released so a standby takes over at once."""
        log.info("beat %s starting", self.holder)
        try:
            while not self._stop.is_set():
                try:
                    wait = self.tick()
                except DatabaseConnectionError as exc:
                    log.warning("beat: database unavailable (%s); retrying", exc)
                    self.term = None
                    wait = self.max_interval
                except Exception:
                    # A beat must outlive one bad round (its thread in a worker would
                    # otherwise die silently); the lease fences whatever state it was in.
                    log.exception("beat: tick failed; retrying")
                    self.term = None
                    wait = self.max_interval
                self._stop.wait(wait)
        finally:
            if self.term is not None:
                try:
                    self.app.broker.release_beat_lease(self.holder)
                except Exception:  # the lease expires by itself
                    log.debug("beat: could not release the lease", exc_info=True)
                self.term = None
            log.info("beat %s stopped", self.holder)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current tick."""
        self._stop.set()

    def start_thread(self) -> threading.Thread:
        """Run in a daemon thread (``taskflow worker -B``)."""
        thread = threading.Thread(target=self.run, name="taskflow-beat", daemon=True)
        thread.start()
        return thread


def run_beat(app: Taskflow, name: str | None = None) -> int:
    """``taskflow beat``: run a beat in this process until SIGTERM or SIGINT."""
    app.finalize()
    app.broker  # noqa: B018 - connect and migrate before announcing readiness
    beat = Beat(app, name)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("beat: %s received, stopping", signal.Signals(signum).name)
        beat.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        beat.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        app.close()
    return 0


__all__ = ["Beat", "run_beat"]
