"""Every exception taskflow raises.

All derive from :class:`TaskflowError`, so ``except TaskflowError`` catches anything the
framework itself raised. Messages always name the offending value.
"""

from __future__ import annotations


class TaskflowError(Exception):
    """Base class of every error raised by taskflow."""


class ConfigurationError(TaskflowError):
    """An option, decorator argument or configuration value is invalid."""


class DatabaseConnectionError(TaskflowError):
    """The system database could not be reached (the message names host and reason, never
    the password)."""


class SerializationError(TaskflowError):
    """A value could not be serialized to msgspec JSON (or decoded back)."""


class UnknownWorkflowError(TaskflowError):
    """A workflow name is not registered in this app."""


class UnknownQueueError(TaskflowError):
    """A queue is neither declared in the app nor known in the database."""


class NonDeterministicWorkflowError(TaskflowError):
    """Replaying a workflow called a different step than its recorded history holds."""


class WorkflowCancelledError(TaskflowError):
    """The workflow was cancelled; raised by ``get()`` and at the cancelled workflow's next step."""


class WorkflowDeduplicatedError(TaskflowError):
    """A workflow with the same deduplication id is already waiting or running in the queue."""


class WorkflowConflictError(TaskflowError):
    """A workflow id is already taken by a workflow of another name."""


class WorkflowStatusError(TaskflowError):
    """The workflow's status does not allow what was asked: resuming one that is not
    CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED, or moving the delay of one that is not
    DELAYED. The message names each workflow and the status it was in."""


class MaxRecoveryAttemptsExceededError(TaskflowError):
    """The workflow crashed its executors more often than ``max_recovery_attempts`` allows and
    was parked as MAX_RECOVERY_ATTEMPTS_EXCEEDED; resume it once the cause is fixed."""


class SoftTimeLimitExceeded(TaskflowError):
    """Raised inside running code when its ``soft_time_limit`` passes."""


class TimeLimitExceeded(TaskflowError):
    """Recorded when ``time_limit`` ended the process running a workflow."""


class Retry(TaskflowError):
    """Raised by ``self.retry()`` in a bound task: the workflow is run again later, from its
    last completed step. Not an error to handle; let it propagate."""

    def __init__(
        self, message: str = "", exc: BaseException | None = None, when: float | None = None
    ) -> None:
        super().__init__(message or "retry requested")
        self.exc = exc
        self.when = when
        """Seconds until the retry."""
        self.checked = False
        """True when ``self.retry()`` raised it, having checked ``max_retries`` already."""


class MaxRetriesExceededError(TaskflowError):
    """``self.retry()`` was called with no retries left and no exception to re-raise."""


class WorkflowError(TaskflowError):
    """A workflow (or step) failed with an exception whose type cannot be re-created here.

    Carries what was recorded: ``type_name`` (``module.QualName``), ``message`` and
    ``remote_traceback`` (the traceback text from the process that ran it).
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback


__all__ = [
    "ConfigurationError",
    "DatabaseConnectionError",
    "MaxRecoveryAttemptsExceededError",
    "MaxRetriesExceededError",
    "NonDeterministicWorkflowError",
    "Retry",
    "SerializationError",
    "SoftTimeLimitExceeded",
    "TaskflowError",
    "TimeLimitExceeded",
    "UnknownQueueError",
    "UnknownWorkflowError",
    "WorkflowCancelledError",
    "WorkflowConflictError",
    "WorkflowDeduplicatedError",
    "WorkflowError",
    "WorkflowStatusError",
]
