"""The ``taskflow`` command line: one module per command group, gathered on ``main``."""

from __future__ import annotations

from taskflow.cli.main import main
from taskflow.cli.queues import queues
from taskflow.cli.retention import prune, purge
from taskflow.cli.schedules import beat, schedules
from taskflow.cli.versions import versions
from taskflow.cli.workers import inspect, status
from taskflow.cli.workflows import workflows

main.add_command(queues)
main.add_command(prune)
main.add_command(purge)
main.add_command(beat)
main.add_command(schedules)
main.add_command(status)
main.add_command(inspect)
main.add_command(workflows)
main.add_command(versions)

__all__ = ["main"]
