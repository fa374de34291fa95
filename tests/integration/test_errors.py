"""Errors users meet first, each clear and raised before anything is written: unknown names,
values that cannot be serialized, invalid options, an unreachable database."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskflow import (
    ConfigurationError,
    DatabaseConnectionError,
    SerializationError,
    Status,
    Taskflow,
    UnknownWorkflowError,
)

from .helpers import workflow_ids


def test_an_unknown_workflow_name_or_id_raises_unknown_workflow_error(app: Taskflow) -> None:
    @app.workflow(name="wf.known")
    def known() -> None:
        pass

    assert app.get_workflow("wf.known") is known
    with pytest.raises(UnknownWorkflowError, match=r"'nope'.*known: wf\.known"):
        app.get_workflow("nope")
    with pytest.raises(UnknownWorkflowError, match="'no-such-id'"):
        app.retrieve("no-such-id")


def test_a_non_serializable_argument_fails_at_the_call_and_writes_nothing(
    app: Taskflow, database_url: str
) -> None:
    ran: list[object] = []

    @app.workflow(name="wf.ser")
    def ser(payload: object, *, extra: object = None) -> None:
        ran.append(payload)

    app.migrate()
    with pytest.raises(SerializationError, match=r"argument 'payload' of workflow 'wf\.ser'"):
        ser(object())
    with pytest.raises(SerializationError, match="argument 'extra'"):
        ser.apply(args=(1,), kwargs={"extra": 1j}, workflow_id="ser-1")
    with pytest.raises(
        SerializationError,
        match=r"of type lock: Encoding objects of type _thread\.lock is unsupported",
    ):
        ser.apply(args=(threading.Lock(),), workflow_id="ser-2")

    assert ran == []
    assert app.broker.get_workflow("ser-1") is None
    assert app.broker.get_workflow("ser-2") is None
    assert app.broker.list_pending(app.app_version) == []
    assert workflow_ids(database_url) == []


def test_a_non_serializable_result_ends_the_workflow_in_error(app: Taskflow) -> None:
    @app.step(name="bad_step")
    def bad_step() -> Any:
        return object()

    @app.workflow(name="wf.bad_result")
    def bad_result() -> Any:
        return object()

    @app.workflow(name="wf.bad_step_result")
    def bad_step_result() -> str:
        try:
            bad_step()
        except SerializationError as exc:
            return f"step failed: {exc}"
        return "no error"

    handle = bad_result.apply()
    assert handle.status is Status.ERROR
    with pytest.raises(SerializationError, match=r"result of workflow 'wf\.bad_result'"):
        handle.get()

    out = bad_step_result.apply().get()
    assert out.startswith("step failed: cannot serialize result of step 'bad_step'")


@pytest.fixture
def offline_app(tmp_path: Path) -> Taskflow:
    """An app for decoration checks (these never touch a database)."""
    return Taskflow("offline", database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": -1}, "max_retries must be an integer >= 0, got -1"),
        ({"max_retries": 1.5}, "max_retries must be an integer >= 0, got 1.5"),
        ({"retry_backoff_factor": 0.5}, "retry_backoff_factor must be >= 1, got 0.5"),
        ({"retry_backoff": -0.1}, "retry_backoff must be >= 0, got -0.1"),
        ({"retry_backoff_max": -1.0}, "retry_backoff_max must be >= 0, got -1.0"),
        ({"timeout": -1}, "timeout must be > 0 seconds, got -1"),
        ({"timeout": 0}, "timeout must be > 0 seconds, got 0"),
        ({"timeout": True}, "timeout must be > 0 seconds, got True"),
        ({"autoretry_for": (ValueError, "oops")}, "autoretry_for must hold exception classes"),
    ],
)
def test_invalid_step_options_fail_at_decoration(
    offline_app: Taskflow, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match="^step 'bad': " + re.escape(message)):

        @offline_app.step(name="bad", **options)
        def bad() -> None:
            pass


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": -1}, "timeout must be > 0 seconds, got -1"),
        ({"timeout": "10"}, "timeout must be > 0 seconds, got '10'"),
        ({"max_recovery_attempts": -1}, "max_recovery_attempts must be an integer >= 0, got -1"),
        ({"queue": ""}, "a queue name must not be empty"),
        ({"queue": "two words"}, "queue name"),
    ],
)
def test_invalid_workflow_options_fail_at_decoration(
    offline_app: Taskflow, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match="^workflow 'wf.bad': " + re.escape(message)):

        @offline_app.workflow(name="wf.bad", **options)
        def bad() -> None:
            pass

    assert "wf.bad" not in offline_app.workflows


def test_invalid_call_options_fail_before_anything_runs(app: Taskflow, database_url: str) -> None:
    ran: list[int] = []

    @app.workflow(name="wf.opts")
    def opts() -> None:
        ran.append(1)

    with pytest.raises(ConfigurationError, match="timeout must be > 0 seconds, got -5"):
        opts.apply(timeout=-5)
    with pytest.raises(ConfigurationError, match="'a' and its alias task_id 'b' disagree"):
        opts.apply(workflow_id="a", task_id="b")
    with pytest.raises(ConfigurationError, match="workflow_id must be a non-empty string"):
        opts.apply(workflow_id="")
    assert ran == []
    assert workflow_ids(database_url) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.postgres
def test_an_unreachable_postgres_raises_database_connection_error_without_password() -> None:
    port = _free_port()
    app = Taskflow(
        "unreachable",
        database_url=f"postgresql://alice:s3cret-pw@127.0.0.1:{port}/shop",
        database_connect_timeout=1,
    )

    @app.workflow(name="wf.never")
    def never() -> None:
        pass

    try:
        with pytest.raises(DatabaseConnectionError) as caught:
            never()
    finally:
        app.close()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message
    assert "alice" in message


@pytest.mark.postgres
def test_a_missing_postgres_database_raises_database_connection_error(
    postgres_url: str,
) -> None:
    base, _, _ = postgres_url.rpartition("/")
    head, _, host = base.rpartition("@")
    url = f"{head}:hunter2@{host}/tf_no_such_database"
    app = Taskflow("missing", database_url=url, database_connect_timeout=2)
    try:
        with pytest.raises(DatabaseConnectionError) as caught:
            app.migrate()
    finally:
        app.close()
    message = str(caught.value)
    assert "127.0.0.1:5432" in message
    assert "tf_no_such_database" in message
    assert "hunter2" not in message


def test_an_unreachable_sqlite_file_raises_database_connection_error(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "folder" / "db.sqlite3"
    app = Taskflow("nowhere", database_url=f"sqlite:///{path}")

    @app.workflow(name="wf.never")
    def never() -> None:
        pass

    try:
        with pytest.raises(DatabaseConnectionError, match="does not exist") as caught:
            never()
    finally:
        app.close()
    assert str(path) in str(caught.value)


def test_database_url_and_broker_url_must_agree(make_app: Callable[..., Taskflow]) -> None:
    with pytest.raises(ConfigurationError, match="broker_url"):
        Taskflow("x", database_url="sqlite:///a.sqlite3", broker_url="sqlite:///b.sqlite3")
    app = make_app("alias")
    alias = Taskflow("alias2", broker_url=app.conf.database_url, app_version="test-version")
    try:
        assert alias.conf.database_url == app.conf.database_url
        assert alias.migrate() == 0  # the same, already migrated database
    finally:
        alias.close()
