"""Heartbeats: a background thread that tells the database this executor is alive.

Workers heartbeat, and so does any process while it runs workflows directly, so that a live
worker can tell when either is gone and give its running workflows back to their queues.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from taskflow.broker.base import Broker
from taskflow.clock import Clock, now_ms
from taskflow.models import ExecutorBeat

log = logging.getLogger("taskflow.heartbeat")


class Heartbeat:
    """Upserts one executor's heartbeat row every ``interval`` seconds, then runs ``on_tick``
    (a worker's sweep for dead executors), until stopped. A worker's row also names its
    ``pool`` and the ``workflows`` its app registers, for ``taskflow inspect``."""

    def __init__(
        self,
        broker: Callable[[], Broker],
        clock: Clock,
        *,
        executor_id: str,
        kind: str,
        name: str,
        app_version: Callable[[], str | None],
        interval: float,
        queues: list[str] | None = None,
        concurrency: int = 0,
        pool: str | None = None,
        workflows: Callable[[], list[str]] | None = None,
        on_tick: Callable[[], object] | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self._broker = broker
        self._clock = clock
        self.executor_id = executor_id
        self._kind = kind
        self._name = name
        self._app_version = app_version
        self.interval = interval
        self._queues = queues or []
        self._concurrency = concurrency
        self._pool = pool
        self._workflows = workflows
        self._on_tick = on_tick
        self.lock = lock or threading.Lock()
        """Held while the thread uses the database (a worker holds it to fork safely)."""
        self._started_at = now_ms(clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def beat(self) -> ExecutorBeat:
        """The row this executor writes now."""
        return ExecutorBeat(
            executor_id=self.executor_id,
            kind=self._kind,
            name=self._name,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            app_version=self._app_version(),
            queues=self._queues,
            concurrency=self._concurrency,
            started_at=self._started_at,
            heartbeat_at=now_ms(self._clock),
            pool=self._pool,
            workflows=self._workflows() if self._workflows is not None else None,
        )

    def beat_now(self) -> None:
        """Write one heartbeat at once (raises on a database error)."""
        self._broker().heartbeat(self.beat())

    @property
    def running(self) -> bool:
        """True while the thread runs in this process (a forked child has none)."""
        return self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()

    def start(self) -> None:
        """Write a first heartbeat, then keep beating in a daemon thread."""
        self.beat_now()
        self._stop.clear()
        self._pid = os.getpid()
        self._thread = threading.Thread(
            target=self._run, name=f"taskflow-heartbeat-{self._kind}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.lock:
                    self.beat_now()
                    if self._on_tick is not None:
                        self._on_tick()
            except Exception:
                # A database outage must not kill the thread: the next tick tries again.
                log.exception("heartbeat of %s failed", self.executor_id)

    def stop(self, remove: bool = True) -> None:
        """Stop beating and, with ``remove``, delete the row (a clean exit)."""
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=self.interval + 5)
        self._thread = None
        if remove:
            try:
                self._broker().remove_executor(self.executor_id)
            except Exception:
                log.warning("could not remove heartbeat row of %s", self.executor_id)


__all__ = ["Heartbeat"]
