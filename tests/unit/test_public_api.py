"""``taskflow``'s public surface: a short curated ``__all__``, and every error importable."""

from __future__ import annotations

import inspect

import pytest

import taskflow
import taskflow.errors

CURATED = {
    "close_stream",
    "crontab",
    "write_stream",
    "get_event",
    "recv",
    "send",
    "set_event",
    "sleep",
    "Client",
    "Config",
    "ConfigurationError",
    "CurrentInfo",
    "DatabaseConnectionError",
    "Debouncer",
    "ErrorInfo",
    "MaxRecoveryAttemptsExceededError",
    "MaxRetriesExceededError",
    "NonDeterministicWorkflowError",
    "Queue",
    "Request",
    "Retry",
    "SerializationError",
    "SoftTimeLimitExceeded",
    "Status",
    "Step",
    "StepFuture",
    "StepInfo",
    "Taskflow",
    "TaskflowError",
    "TimeLimitExceeded",
    "UnknownQueueError",
    "UnknownWorkflowError",
    "VersionInfo",
    "Workflow",
    "WorkflowCancelledError",
    "WorkflowConflictError",
    "WorkflowDeduplicatedError",
    "WorkflowError",
    "WorkflowHandle",
    "WorkflowInfo",
    "WorkflowStatusError",
    "__version__",
    "current",
    "deprecate_patch",
    "gather",
    "patch",
    "select",
    "shared_task",
    "signals",
    "start_step",
}

# The errors API.md promises, by name.
DOCUMENTED_ERRORS = [
    "TaskflowError",
    "SerializationError",
    "WorkflowError",
    "NonDeterministicWorkflowError",
    "WorkflowCancelledError",
    "WorkflowDeduplicatedError",
    "UnknownQueueError",
    "UnknownWorkflowError",
    "SoftTimeLimitExceeded",
    "TimeLimitExceeded",
    "ConfigurationError",
]


def _error_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(taskflow.errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == taskflow.errors.__name__
    ]


def test_all_is_exactly_the_curated_list() -> None:
    assert len(taskflow.__all__) == len(set(taskflow.__all__)), "duplicates in __all__"
    assert set(taskflow.__all__) == CURATED


@pytest.mark.parametrize("name", sorted(CURATED))
def test_every_public_name_is_importable(name: str) -> None:
    assert getattr(taskflow, name) is not None


def test_star_import_gives_the_curated_names() -> None:
    namespace: dict[str, object] = {}
    exec("from taskflow import *", namespace)
    assert set(namespace) - {"__builtins__"} == CURATED


def test_version_is_a_string() -> None:
    assert isinstance(taskflow.__version__, str)
    assert taskflow.__version__.count(".") >= 1


def test_errors_module_lists_every_error() -> None:
    classes = _error_classes()
    assert {c.__name__ for c in classes} == set(taskflow.errors.__all__)
    assert set(DOCUMENTED_ERRORS) <= set(taskflow.errors.__all__)


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_derives_from_taskflow_error_and_is_exported(
    cls: type[BaseException],
) -> None:
    assert issubclass(cls, taskflow.TaskflowError)
    assert issubclass(cls, Exception)
    assert getattr(taskflow, cls.__name__) is cls
    assert cls.__name__ in taskflow.__all__
    assert cls.__doc__, f"{cls.__name__} has no docstring"


def test_workflow_error_carries_what_was_recorded() -> None:
    err = taskflow.WorkflowError("shop.PaymentError", "declined", "Traceback ...")
    assert err.type_name == "shop.PaymentError"
    assert err.message == "declined"
    assert err.remote_traceback == "Traceback ..."
    assert str(err) == "shop.PaymentError: declined"
