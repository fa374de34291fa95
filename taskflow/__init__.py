"""taskflow: durable background work on Postgres, with a Celery-style API.

Workflows are made of checkpointed steps; a workflow interrupted anywhere resumes from its
last completed step.
"""

from __future__ import annotations

from taskflow import signals
from taskflow.app import Taskflow
from taskflow.client import Client
from taskflow.concurrent import StepFuture, gather, select, start_step
from taskflow.config import Config
from taskflow.cron import crontab
from taskflow.debouncer import Debouncer
from taskflow.errors import (
    ConfigurationError,
    DatabaseConnectionError,
    MaxRecoveryAttemptsExceededError,
    MaxRetriesExceededError,
    NonDeterministicWorkflowError,
    Retry,
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
    WorkflowStatusError,
)
from taskflow.handle import WorkflowHandle
from taskflow.messaging import get_event, recv, send, set_event
from taskflow.models import ErrorInfo, StepInfo, VersionInfo, WorkflowInfo
from taskflow.patching import deprecate_patch, patch
from taskflow.queues import Queue
from taskflow.shared import shared_task
from taskflow.status import Status
from taskflow.step import Step
from taskflow.streams import close_stream, write_stream
from taskflow.task import Request, Workflow
from taskflow.waiting import sleep
from taskflow.workflow import CurrentInfo, current

__version__ = "0.1.0"

__all__ = [
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
    "close_stream",
    "crontab",
    "current",
    "deprecate_patch",
    "gather",
    "get_event",
    "patch",
    "recv",
    "select",
    "send",
    "set_event",
    "shared_task",
    "signals",
    "sleep",
    "start_step",
    "write_stream",
]
