"""The app the stream tests run through real ``taskflow worker`` processes.

A worker loads it with ``-A tests.integration.streamapp:app``; it reads the database URL
from the environment :func:`helpers.worker_env` builds. Heartbeats are fast, so a worker
that was killed is recovered by another one within a few seconds.
"""

from __future__ import annotations

import os

import taskflow
from taskflow import Taskflow

DATABASE_URL_ENV = "TASKFLOW_WORKERAPP_DATABASE_URL"
"""Set by :func:`helpers.worker_env` (the same name :mod:`workerapp` reads)."""
APP_VERSION = "streamapp-1"
KEY = "numbers"
"""The stream :func:`produce` writes."""


def create_app(database_url: str | None) -> Taskflow:
    """A new app on ``database_url`` with this module's workflow (``app._workflows``)."""
    app = Taskflow(
        "streamapp",
        database_url=database_url,
        app_version=APP_VERSION,
        worker_heartbeat_interval=0.5,
        worker_heartbeat_timeout=3.0,
        worker_poll_interval=0.1,
    )

    @app.workflow(name="streams.produce")
    def produce(count: int, pause: float) -> int:
        """Write 0 .. count-1 to stream :data:`KEY`, sleeping durably ``pause`` seconds
        after each, then close it."""
        for i in range(count):
            taskflow.write_stream(KEY, i)
            taskflow.sleep(pause)
        taskflow.close_stream(KEY)
        return count

    return app


app = create_app(os.environ.get(DATABASE_URL_ENV))
