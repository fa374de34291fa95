"""The app that the beat tests run through real ``taskflow beat`` and ``taskflow worker -B``
processes (``-A tests.integration.beatapp:app``).

It reads the environment of :func:`helpers.worker_env` (database URL, work folder). Its
``tick`` workflow is scheduled every second; ``nightly`` comes from ``conf.beat_schedule``
(Celery's format) and is never due during a test. Scheduled runs append
``<workflow id> <scheduled_at ISO> <context>`` lines to ``ticks.log`` in the work folder.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from taskflow import Taskflow, crontab

DATABASE_URL_ENV = "TASKFLOW_WORKERAPP_DATABASE_URL"
WORKDIR_ENV = "TASKFLOW_WORKERAPP_DIR"
TICKS = "ticks.log"

app = Taskflow(
    "beatapp",
    database_url=os.environ.get(DATABASE_URL_ENV, "sqlite:///beatapp.sqlite3"),
    app_version="beatapp-1",
    worker_heartbeat_interval=0.5,
    worker_poll_interval=0.2,
)
app.conf.beat_schedule = {
    "nightly-report": {
        "task": "beat.report",
        "schedule": crontab(hour=3, minute=0),
        "args": ("pdf",),
        "options": {"queue": "default"},
    }
}


@app.workflow(name="beat.tick", schedule="* * * * * *", tz="Europe/Paris")
def tick(scheduled_at: datetime, context: Any) -> str:
    """Record the scheduled time this run was fired for."""
    from taskflow import current

    line = f"{current().workflow_id} {scheduled_at.isoformat()} {context}\n"
    fd = os.open(Path(os.environ[WORKDIR_ENV]) / TICKS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return scheduled_at.isoformat()


@app.workflow(name="beat.report")
def report(kind: str) -> str:
    """A Celery-style beat entry's target: called with the entry's args."""
    return f"report:{kind}"
