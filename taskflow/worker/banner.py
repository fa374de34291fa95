"""The start-up banner, in the spirit of Celery's: what this worker is and serves."""

from __future__ import annotations

import platform

from taskflow.app import Taskflow
from taskflow.broker.url import parse_database_url
from taskflow.worker.options import WorkerOptions


def banner(app: Taskflow, options: WorkerOptions, worker_id: str) -> str:
    """Several lines: app, database (password hidden), queues, concurrency, version."""
    from taskflow import __version__  # noqa: PLC0415 - the package imports this module's layer

    database = parse_database_url(app.conf.resolved_database_url()).redacted
    if options.pool == "prefork":
        concurrency = (
            f"{options.concurrency} processes x {options.threads} threads "
            f"= {options.slots} (prefork)"
        )
    else:
        concurrency = f"{options.concurrency} ({options.pool})"
    names = sorted(app.workflows)
    lines = [
        f" -------------- {options.name} v{__version__} (Python {platform.python_version()})",
        "--- ***** -----",
        "- ** ---------- [config]",
        f"- ** ---------- .> app:         {app.name}",
        f"- ** ---------- .> database:    {database}",
        f"- ** ---------- .> app version: {app.app_version}",
        f"- ** ---------- .> executor:    {worker_id}",
        f"- ** ---------- .> concurrency: {concurrency}",
        f"- ** ---------- .> queues:      {', '.join(options.queues)}",
        "",
        "[workflows]",
        *(f"  . {name}" for name in names),
    ]
    return "\n".join(lines)


__all__ = ["banner"]
