"""taskflow: durable background work on Postgres, with a Celery-style API.

Workflows are made of checkpointed steps; a workflow interrupted anywhere resumes from its
last completed step.
"""

from __future__ import annotations

from taskflow.app import Taskflow, Workflow
from taskflow.config import Config
from taskflow.errors import (
    ConfigurationError,
    DatabaseConnectionError,
    MaxRecoveryAttemptsExceededError,
    NonDeterministicWorkflowError,
    SerializationError,
    SoftTimeLimitExceeded,
    TaskflowError,
    TimeLimitExceeded,
    UnknownQueueError,
    UnknownWorkflowError,
    WorkflowCancelledError,
    WorkflowConflictError,
    WorkflowDeduplicatedError,
    WorkflowError,
)
from taskflow.handle import WorkflowHandle
from taskflow.models import ErrorInfo, StepInfo, WorkflowInfo
from taskflow.status import Status
from taskflow.step import Step
from taskflow.workflow import CurrentInfo, current

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigurationError",
    "CurrentInfo",
    "DatabaseConnectionError",
    "ErrorInfo",
    "MaxRecoveryAttemptsExceededError",
    "NonDeterministicWorkflowError",
    "SerializationError",
    "SoftTimeLimitExceeded",
    "Status",
    "Step",
    "StepInfo",
    "Taskflow",
    "TaskflowError",
    "TimeLimitExceeded",
    "UnknownQueueError",
    "UnknownWorkflowError",
    "Workflow",
    "WorkflowCancelledError",
    "WorkflowConflictError",
    "WorkflowDeduplicatedError",
    "WorkflowError",
    "WorkflowHandle",
    "WorkflowInfo",
    "__version__",
    "current",
]
