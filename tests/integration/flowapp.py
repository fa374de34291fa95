"""The app that the queue flow-control tests run through real ``taskflow worker`` processes.

A worker loads it with ``-A tests.integration.flowapp:app``; the tests build a producer app
with the same queues and workflows on their own database with :func:`create_app` (a
producer needs the declarations too: a partitioned queue is checked at enqueue).

It reads the same environment variables as :mod:`workerapp`, so ``helpers.worker_env`` and
the ``workers`` fixture serve both apps unchanged:

- ``$TASKFLOW_WORKERAPP_DATABASE_URL``: the system database;
- ``$TASKFLOW_WORKERAPP_DIR``: the work folder, where every workflow body appends one line
  per event to :data:`RECORDS` (see :func:`record`);
- ``$TASKFLOW_WORKERAPP_THREADS``: ``worker_threads`` (default 4).

The names are repeated here rather than imported from :mod:`workerapp`: importing it in a
worker would build that app too and connect its signal handlers, which write files of their
own.

``python -m tests.integration.flowapp race ...`` is one producer of the deduplication race
(see :func:`race`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from taskflow import Taskflow, Workflow, WorkflowDeduplicatedError, current

DATABASE_URL_ENV = "TASKFLOW_WORKERAPP_DATABASE_URL"
WORKDIR_ENV = "TASKFLOW_WORKERAPP_DIR"
THREADS_ENV = "TASKFLOW_WORKERAPP_THREADS"

APP_VERSION = "flowapp-1"
HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 3.0
POLL_INTERVAL = 0.1
RECORDS = "flow_records.log"
START = "start"
END = "end"

# -- the queues under test ----------------------------------------------------------------------
LIMITED = "fc_limited"
LIMITED_CONCURRENCY = 3
PER_WORKER = "fc_per_worker"
PER_WORKER_CONCURRENCY = 2
RATED = "fc_rated"
RATE_COUNT = 50
RATE_PERIOD = 1.0
PARTS = "fc_parts"
PARTS_CONCURRENCY = 2
"""Per partition key: the queue is partitioned."""
PRIO = "fc_prio"
DEDUP = "fc_dedup"
TIMED = "fc_timed"
ALL_QUEUES = (LIMITED, PER_WORKER, RATED, PARTS, PRIO, DEDUP, TIMED)

INTERVAL = "fc.interval"

DedupPolicy = Literal["reject", "return_existing"]


# -- outside the database ----------------------------------------------------------------------
def workdir() -> Path:
    """The folder holding the records."""
    return Path(os.environ[WORKDIR_ENV])


def record(event: str, label: str) -> None:
    """Append ``<event> <label> <workflow id> <time.time()> <pid> <ppid>`` to :data:`RECORDS`.

    One ``write()`` of a short line on an ``O_APPEND`` file: lines from many processes never
    mix. The parent pid names the worker instance: prefork children are forked by the
    ``taskflow worker`` process itself (replacements too), so it is the same for every child
    of one instance and differs between instances.
    """
    line = (
        f"{event} {label} {current().workflow_id} {time.time():.6f} {os.getpid()} {os.getppid()}\n"
    )
    fd = os.open(workdir() / RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


# -- the app ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowApp:
    """An app with this module's queues and workflow registered on it."""

    app: Taskflow
    interval: Workflow[[str, int], None]


def create_app(database_url: str | None) -> FlowApp:
    """A new app on ``database_url`` with this module's queues and workflow."""
    app = Taskflow(
        "flowapp",
        database_url=database_url,
        app_version=APP_VERSION,
        worker_heartbeat_interval=HEARTBEAT_INTERVAL,
        worker_heartbeat_timeout=HEARTBEAT_TIMEOUT,
        worker_poll_interval=POLL_INTERVAL,
        worker_threads=int(os.environ.get(THREADS_ENV, "4")),
    )
    app.queue(LIMITED, concurrency=LIMITED_CONCURRENCY)
    app.queue(PER_WORKER, worker_concurrency=PER_WORKER_CONCURRENCY)
    # The tuple form, so both spellings of a rate limit are declared somewhere in the suite
    # ("50/s" would be the same limit).
    app.queue(RATED, rate_limit=(RATE_COUNT, RATE_PERIOD))
    app.queue(PARTS, concurrency=PARTS_CONCURRENCY, partitioned=True)
    app.queue(PRIO)
    app.queue(DEDUP)
    app.queue(TIMED)

    # Its default queue comes from the decorator; the tests send it elsewhere with
    # apply_async(queue=...) / delay_many(queue=...).
    @app.workflow(name=INTERVAL, queue=LIMITED)
    def interval(label: str, ms: int) -> None:
        """Record the start, take ``ms`` milliseconds, record the end: the interval during
        which this workflow certainly ran (it was PENDING for at least that long)."""
        record(START, label)
        if ms:
            time.sleep(ms / 1000)
        record(END, label)

    return FlowApp(app, interval)


flow = create_app(os.environ.get(DATABASE_URL_ENV))
app = flow.app


# -- one producer of the deduplication race -----------------------------------------------------
def race(policy: DedupPolicy, dedup_id: str, ready: Path, go: Path) -> dict[str, str]:
    """Connect, announce readiness by creating ``ready``, wait for ``go`` to exist, then
    enqueue on :data:`DEDUP` with ``dedup_id``; return ``{"id": ...}`` or the error's type and
    message. Connecting first means the enqueues really start together."""
    flow.app.migrate()  # connects (and checks the schema) before the start line
    ready.write_text(str(os.getpid()), encoding="utf-8")
    give_up = time.monotonic() + 60.0
    while not go.exists():
        if time.monotonic() > give_up:
            raise TimeoutError(f"{go} did not appear within 60s")
        time.sleep(0.001)
    try:
        handle = flow.interval.apply_async(
            (f"dedup-{policy}", 0), queue=DEDUP, dedup_id=dedup_id, dedup_policy=policy
        )
    except WorkflowDeduplicatedError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"id": handle.id}


def main(argv: list[str]) -> int:
    """``python -m tests.integration.flowapp race <policy> <dedup id> <ready> <go>``: run
    :func:`race` and print its outcome as one JSON line."""
    if len(argv) != 5 or argv[0] != "race" or argv[1] not in ("reject", "return_existing"):
        print("usage: flowapp race reject|return_existing <dedup id> <ready> <go>", file=sys.stderr)
        return 2
    policy: DedupPolicy = "reject" if argv[1] == "reject" else "return_existing"
    try:
        print(json.dumps(race(policy, argv[2], Path(argv[3]), Path(argv[4]))))
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
