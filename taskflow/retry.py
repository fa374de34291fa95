"""Retry policies: validation and exponential backoff with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable

import msgspec

from taskflow.errors import ConfigurationError


class RetryPolicy(msgspec.Struct, frozen=True):
    """When and how often a failed step is tried again.

    The n-th retry (n = 1, 2, ...) waits ``min(backoff * factor**(n-1), backoff_max)``
    seconds, then jitter keeps a uniformly random share between half and all of it, so many
    workflows failing together do not retry in lockstep.
    """

    max_retries: int = 0
    backoff: float = 0.1
    backoff_factor: float = 2.0
    backoff_max: float = 5.0
    jitter: bool = True
    autoretry_for: tuple[type[BaseException], ...] = (Exception,)

    def validate(self, owner: str) -> RetryPolicy:
        """Raise :class:`ConfigurationError` naming ``owner`` for an invalid option."""
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigurationError(
                f"{owner}: max_retries must be an integer >= 0, got {self.max_retries!r}"
            )
        if self.backoff < 0:
            raise ConfigurationError(f"{owner}: retry_backoff must be >= 0, got {self.backoff!r}")
        if self.backoff_factor < 1:
            raise ConfigurationError(
                f"{owner}: retry_backoff_factor must be >= 1, got {self.backoff_factor!r}"
            )
        if self.backoff_max < 0:
            raise ConfigurationError(
                f"{owner}: retry_backoff_max must be >= 0, got {self.backoff_max!r}"
            )
        for cls in self.autoretry_for:
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise ConfigurationError(
                    f"{owner}: autoretry_for must hold exception classes, got {cls!r}"
                )
        return self

    def should_retry(self, exc: BaseException, retries_done: int) -> bool:
        """Whether ``exc``, after ``retries_done`` retries, earns another try."""
        return retries_done < self.max_retries and isinstance(exc, self.autoretry_for)

    def delay(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based)."""
        try:
            growth = self.backoff_factor ** (retry_number - 1)
        except OverflowError:  # a very late retry: far past any cap
            growth = float("inf")
        raw = min(self.backoff * growth, self.backoff_max) if self.backoff else 0.0
        if not self.jitter:
            return raw
        return raw / 2 + rand() * raw / 2


class WorkflowRetryPolicy(msgspec.Struct, frozen=True):
    """Celery's task retry options, for a whole workflow.

    ``backoff``: False waits ``default_retry_delay``; True (or a number of seconds) waits
    ``backoff * 2**retries_done`` capped at ``backoff_max``, and with ``jitter`` a uniformly
    random share of that (Celery's "full jitter").
    """

    max_retries: int | None = 3
    """None: no limit (Celery's meaning)."""
    autoretry_for: tuple[type[BaseException], ...] = ()
    backoff: bool | float = False
    backoff_max: float = 600.0
    jitter: bool = True
    default_retry_delay: float = 180.0

    def validate(self, owner: str) -> WorkflowRetryPolicy:
        """Raise :class:`ConfigurationError` naming ``owner`` for an invalid option."""
        if self.max_retries is not None and (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ConfigurationError(
                f"{owner}: max_retries must be None or an integer >= 0, got {self.max_retries!r}"
            )
        if not isinstance(self.backoff, bool | int | float) or self.backoff < 0:
            raise ConfigurationError(
                f"{owner}: retry_backoff must be a bool or seconds >= 0, got {self.backoff!r}"
            )
        if self.backoff_max < 0:
            raise ConfigurationError(
                f"{owner}: retry_backoff_max must be >= 0, got {self.backoff_max!r}"
            )
        if self.default_retry_delay < 0:
            raise ConfigurationError(
                f"{owner}: default_retry_delay must be >= 0, got {self.default_retry_delay!r}"
            )
        for cls in self.autoretry_for:
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise ConfigurationError(
                    f"{owner}: autoretry_for must hold exception classes, got {cls!r}"
                )
        return self

    def retries_left(self, retries_done: int, max_retries: int | None = None) -> bool:
        """Whether another retry is allowed after ``retries_done``."""
        limit = self.max_retries if max_retries is None else max_retries
        return limit is None or retries_done < limit

    def should_autoretry(self, exc: BaseException, retries_done: int) -> bool:
        """Whether ``exc`` is retried automatically."""
        return (
            bool(self.autoretry_for)
            and isinstance(exc, self.autoretry_for)
            and (self.retries_left(retries_done))
        )

    def delay(self, retries_done: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before the next run, after ``retries_done`` retries."""
        if self.backoff is False:
            return float(self.default_retry_delay)
        factor = 1.0 if self.backoff is True else float(self.backoff)
        try:
            raw = min(factor * 2.0**retries_done, self.backoff_max)
        except OverflowError:
            raw = self.backoff_max
        return rand() * raw if self.jitter else raw


__all__ = ["RetryPolicy", "WorkflowRetryPolicy"]
