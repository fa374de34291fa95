"""What one ``taskflow worker`` runs with: its options, checked once at start."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from taskflow.config import Config
from taskflow.errors import ConfigurationError

POOLS = ("prefork", "threads", "solo")


@dataclass(frozen=True)
class WorkerOptions:
    """Settings of one worker instance. Built from ``app.conf`` and the command line."""

    pool: str = "prefork"
    concurrency: int = 1
    """Prefork: child processes. Threads: threads. Solo: always 1."""
    threads: int = 8
    """Workflows each prefork child runs at once."""
    queues: tuple[str, ...] = ("default",)
    name: str = field(default_factory=lambda: f"taskflow@{socket.gethostname()}")
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None
    """KiB of resident memory after which a child is replaced."""
    poll_interval: float = 1.0
    heartbeat_interval: float = 2.0
    heartbeat_timeout: float = 10.0
    shutdown_timeout: float = 30.0
    beat: bool = False
    """Also run a beat in the supervisor process (``-B``)."""

    @property
    def slots(self) -> int:
        """Workflows this worker runs at once."""
        if self.pool == "prefork":
            return self.concurrency * self.threads
        return self.concurrency

    @classmethod
    def build(
        cls,
        conf: Config,
        *,
        pool: str | None = None,
        concurrency: int | None = None,
        queues: tuple[str, ...] | None = None,
        name: str | None = None,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | None = None,
        beat: bool = False,
    ) -> WorkerOptions:
        """Options from the app's configuration, overridden by the command line."""
        chosen_pool = (pool or conf.worker_pool or "prefork").lower()
        if chosen_pool not in POOLS:
            raise ConfigurationError(
                f"unknown pool {chosen_pool!r}: choose one of {', '.join(POOLS)}"
            )
        count = concurrency if concurrency is not None else conf.worker_concurrency
        if count is None:
            count = os.cpu_count() or 1
        if chosen_pool == "solo":
            count = 1
        options = cls(
            pool=chosen_pool,
            concurrency=count,
            threads=conf.worker_threads,
            queues=queues or ("default",),
            name=name or f"taskflow@{socket.gethostname()}",
            max_tasks_per_child=(
                max_tasks_per_child
                if max_tasks_per_child is not None
                else conf.worker_max_tasks_per_child
            ),
            max_memory_per_child=(
                max_memory_per_child
                if max_memory_per_child is not None
                else conf.worker_max_memory_per_child
            ),
            poll_interval=conf.worker_poll_interval,
            beat=beat,
            heartbeat_interval=conf.worker_heartbeat_interval,
            heartbeat_timeout=conf.worker_heartbeat_timeout,
            shutdown_timeout=conf.worker_shutdown_timeout,
        )
        options.validate()
        return options

    def validate(self) -> None:
        """Raise :class:`ConfigurationError` naming the first bad option."""
        positive_ints = {
            "concurrency": self.concurrency,
            "worker_threads": self.threads,
            "max_tasks_per_child": self.max_tasks_per_child,
            "max_memory_per_child": self.max_memory_per_child,
        }
        for option, value in positive_ints.items():
            if value is None and option.startswith("max_"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{option} must be an integer >= 1, got {value!r}")
        positive_seconds = {
            "worker_poll_interval": self.poll_interval,
            "worker_heartbeat_interval": self.heartbeat_interval,
            "worker_heartbeat_timeout": self.heartbeat_timeout,
        }
        for option, seconds in positive_seconds.items():
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
                raise ConfigurationError(f"{option} must be > 0 seconds, got {seconds!r}")
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ConfigurationError(
                f"worker_heartbeat_timeout ({self.heartbeat_timeout}s) must exceed "
                f"worker_heartbeat_interval ({self.heartbeat_interval}s)"
            )
        if self.shutdown_timeout < 0:
            raise ConfigurationError(
                f"worker_shutdown_timeout must be >= 0 seconds, got {self.shutdown_timeout!r}"
            )
        if not self.queues:
            raise ConfigurationError("a worker needs at least one queue")


__all__ = ["POOLS", "WorkerOptions"]
