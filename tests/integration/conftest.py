"""Fixtures of the worker tests: a work folder, worker processes that are always killed, and
producer apps with :mod:`workerapp`'s workflows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from . import workerapp
from .helpers import Workers


@pytest.fixture
def worker_dir(tmp_path: Path) -> Path:
    """Folder for worker logs, side effects, events and markers (outside the database)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def workers(worker_dir: Path) -> Iterator[Workers]:
    """Starts ``taskflow worker`` processes; whatever still runs at the end is SIGKILLed."""
    started = Workers(worker_dir)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def make_producer() -> Iterator[Callable[..., workerapp.WorkerApp]]:
    """Factory of producer apps with :mod:`workerapp`'s workflows; all closed at the end."""
    made: list[workerapp.WorkerApp] = []

    def factory(database_url: str, app_version: str = workerapp.APP_VERSION) -> workerapp.WorkerApp:
        built = workerapp.create_app(database_url, app_version)
        made.append(built)
        return built

    yield factory
    for built in made:
        built.app.close()
