"""The ``taskflow`` command line: one module per command group, gathered on ``main``."""

from __future__ import annotations

from taskflow.cli.main import main
from taskflow.cli.queues import queues

main.add_command(queues)

__all__ = ["main"]
