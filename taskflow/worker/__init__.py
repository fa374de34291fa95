"""``taskflow worker``: claims work from the system database and runs it.

A prefork supervisor (or a thread pool) with heartbeats, recovery of dead executors, and warm
and cold shutdown. See :class:`Worker`.
"""

from __future__ import annotations

from taskflow.worker.options import POOLS, WorkerOptions
from taskflow.worker.supervisor import Worker

__all__ = ["POOLS", "Worker", "WorkerOptions"]
