"""Waking waiters in this process when a message, event or stream value they wait for is
written anywhere.

A waiter subscribes to a key (``m:<workflow id>`` for its inbox, ``e:<workflow id>`` for a
workflow's events, ``s:<workflow id>`` for its streams), then checks the database, then waits
on the subscription: a write that lands between the check and the wait still wakes it,
because the subscription exists before the check.

On Postgres the writing statement calls ``pg_notify`` on the schema's wake channel and one
listener thread per process dispatches the payloads. Writes made in this process wake local
waiters directly on every dialect. Anything else (a lost notification, SQLite writes by
another process) is caught by the waiter's own poll: a subscription's ``wait`` never blocks
longer than the hub's poll interval.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("taskflow")


class Subscription:
    """Interest in one key; ``wait`` returns early when the key is published."""

    def __init__(self, hub: WakeHub, key: str) -> None:
        self.key = key
        self._hub = hub
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        """Block up to ``min(timeout, poll interval)`` seconds; True if the key was published
        since the last wait (or the subscription started)."""
        got = self._event.wait(max(0.0, min(timeout, self._hub.poll_interval)))
        self._event.clear()
        return got

    @property
    def poll_interval(self) -> float:
        """The longest one :meth:`wait` blocks."""
        return self._hub.poll_interval

    def close(self) -> None:
        """Stop listening for the key."""
        self._hub._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _fire(self) -> None:
        self._event.set()


class WakeHub:
    """The waiters of one process, by key."""

    def __init__(
        self,
        poll_interval: float,
        listen: Callable[[], Any] | None = None,
    ) -> None:
        self.poll_interval = poll_interval
        """Longest a subscription waits before its owner checks the database again."""
        self._listen = listen
        self._lock = threading.Lock()
        self._subs: dict[str, set[Subscription]] = {}
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stop = False

    def subscribe(self, key: str) -> Subscription:
        """Start listening for ``key`` (use as a context manager)."""
        sub = Subscription(self, key)
        with self._lock:
            if self._pid != os.getpid():
                # A forked child inherits neither the listener thread nor its waiters.
                self._subs, self._thread, self._pid = {}, None, os.getpid()
            self._subs.setdefault(key, set()).add(sub)
            if self._listen is not None and self._thread is None and not self._stop:
                self._thread = threading.Thread(
                    target=self._run, name="taskflow-wakeups", daemon=True
                )
                self._thread.start()
        return sub

    def publish(self, key: str) -> None:
        """Wake this process's waiters on ``key``."""
        with self._lock:
            subs = list(self._subs.get(key, ()))
        for sub in subs:
            sub._fire()

    def close(self) -> None:
        """Stop the listener thread (waiters fall back to polling)."""
        self._stop = True

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.key]

    def _run(self) -> None:
        assert self._listen is not None
        listener = None
        while not self._stop:
            try:
                if listener is None:
                    listener = self._listen()
                for payload in listener.notifies(timeout=self.poll_interval):
                    self.publish(payload)
            except Exception:
                # The waiters poll meanwhile; reconnect on the next round.
                log.debug("wake listener lost its connection; reconnecting", exc_info=True)
                if listener is not None:
                    with contextlib.suppress(Exception):
                        listener.close()
                listener = None
                threading.Event().wait(self.poll_interval)
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()


def inbox_key(workflow_id: str) -> str:
    """The key a workflow's incoming messages are published on."""
    return f"m:{workflow_id}"


def events_key(workflow_id: str) -> str:
    """The key a workflow's events are published on."""
    return f"e:{workflow_id}"


def streams_key(workflow_id: str) -> str:
    """The key a workflow's stream writes are published on."""
    return f"s:{workflow_id}"


__all__ = ["Subscription", "WakeHub", "events_key", "inbox_key", "streams_key"]
