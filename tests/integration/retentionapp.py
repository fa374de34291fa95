"""The app of the retention worker test: ``taskflow worker -A
tests.integration.retentionapp:app`` with a retention that removes what finished more than
:data:`EXPIRES` seconds ago, every :data:`INTERVAL` seconds.

The database comes from ``$TASKFLOW_WORKERAPP_DATABASE_URL``, as for :mod:`workerapp` (so
:func:`helpers.Workers.start` serves both); the test builds its producer with
:func:`create_app`.
"""

from __future__ import annotations

import os

from taskflow import Taskflow

DATABASE_URL_ENV = "TASKFLOW_WORKERAPP_DATABASE_URL"
APP_SPEC = "tests.integration.retentionapp:app"
APP_VERSION = "retention-1"
EXPIRES = 0.5
INTERVAL = 0.2
NOOP = "ra.noop"


def create_app(database_url: str | None) -> Taskflow:
    """A new app on ``database_url`` with one no-op workflow and a short retention."""
    app = Taskflow(
        "retentionapp",
        database_url=database_url,
        app_version=APP_VERSION,
        worker_heartbeat_interval=0.5,
        worker_poll_interval=0.1,
        result_expires=EXPIRES,
        result_expires_interval=INTERVAL,
    )

    @app.workflow(name=NOOP)
    def noop() -> str:
        """Nothing but a result."""
        return "ok"

    return app


app = create_app(os.environ.get(DATABASE_URL_ENV))
