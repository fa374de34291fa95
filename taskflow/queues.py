"""Queue declarations: names, concurrency limits, rate limits and partitioning, validated.

This is the specification of a queue as ``app.queue(...)`` declares it; workers enforce it.
A declaration serializes to JSON (:meth:`Queue.to_json`) so it can be stored in the system
database and read back by workers and operators that do not import the app.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import msgspec

from taskflow.errors import ConfigurationError

DEFAULT_QUEUE = "default"
"""The queue that always exists, used by workflows that name none."""

MAX_QUEUE_NAME_LENGTH = 200
"""Longest queue name accepted (it is stored in an indexed database column)."""

_PERIODS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
_UNITS = {1.0: "s", 60.0: "m", 3600.0: "h"}
_RATE = re.compile(r"(\d+)/([a-z]+)", re.ASCII)


def _is_int(value: object) -> bool:
    # bool is an int subclass, but `concurrency=True` is a mistake, never a count of one.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_positive_seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` starts per ``per`` seconds. ``str()`` gives the ``"100/m"`` form."""

    count: int
    """Starts allowed per period (>= 1)."""
    per: float
    """Length of the period in seconds (> 0)."""

    def __post_init__(self) -> None:
        if not _is_int(self.count) or self.count < 1:
            raise ConfigurationError(
                f"rate limit count must be an integer >= 1, got {self.count!r}"
            )
        if not _is_positive_seconds(self.per):
            raise ConfigurationError(
                f"rate limit period must be a finite number of seconds > 0, got {self.per!r}"
            )
        # Frozen: normalise through object.__setattr__ so 60 and 60.0 compare and hash equal.
        object.__setattr__(self, "per", float(self.per))

    def __str__(self) -> str:
        unit = _UNITS.get(self.per)
        if unit is not None:
            return f"{self.count}/{unit}"
        # No unit fits: readable, but not a form parse_rate_limit accepts (use the tuple).
        return f"{self.count}/{self.per:g}s"


def parse_rate_limit(value: str | tuple[int, float] | RateLimit | None) -> RateLimit | None:
    """Read a rate limit: ``"N/s"``, ``"N/m"``, ``"N/h"`` (or ``/sec``, ``/min``, ``/hour``),
    an ``(N, seconds)`` tuple, a :class:`RateLimit`, or None for no limit.

    N must be a positive integer and seconds a positive number; anything else raises
    :class:`ConfigurationError` naming the value.
    """
    if value is None or isinstance(value, RateLimit):
        return value
    if isinstance(value, str):
        match = _RATE.fullmatch(value.strip())
        if match is None or match.group(2) not in _PERIODS:
            raise ConfigurationError(
                f"rate limit {value!r} is not of the form 'N/s', 'N/m' or 'N/h' "
                "(also 'N/sec', 'N/min', 'N/hour')"
            )
        count = int(match.group(1))
        if count < 1:
            raise ConfigurationError(f"rate limit {value!r}: the count must be at least 1")
        return RateLimit(count, _PERIODS[match.group(2)])
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ConfigurationError(
                f"rate limit {value!r}: a tuple must be (count, seconds), got {len(value)} items"
            )
        count, per = value
        if not _is_int(count) or count < 1:
            raise ConfigurationError(
                f"rate limit {value!r}: the count must be an integer >= 1, got {count!r}"
            )
        if not _is_positive_seconds(per):
            raise ConfigurationError(
                f"rate limit {value!r}: the period must be a finite number of seconds > 0, "
                f"got {per!r}"
            )
        return RateLimit(count, float(per))
    raise ConfigurationError(
        f"rate limit must be a string such as '100/m', a (count, seconds) tuple or None, "
        f"got {value!r} ({type(value).__name__})"
    )


def validate_queue_name(name: object) -> str:
    """Return ``name`` if it is a valid queue name, else raise :class:`ConfigurationError`.

    A queue name is a non-empty string of at most 200 characters without whitespace or
    control characters (it appears in command lines, logs and database keys).
    """
    if not isinstance(name, str):
        raise ConfigurationError(
            f"a queue name must be a string, got {name!r} ({type(name).__name__})"
        )
    if not name:
        raise ConfigurationError("a queue name must not be empty, got ''")
    if len(name) > MAX_QUEUE_NAME_LENGTH:
        raise ConfigurationError(
            f"queue name {name[:40]!r}... is {len(name)} characters long; "
            f"at most {MAX_QUEUE_NAME_LENGTH} are allowed"
        )
    for index, char in enumerate(name):
        if char.isspace() or not char.isprintable():
            raise ConfigurationError(
                f"queue name {name!r} contains whitespace or a control character "
                f"({char!r} at index {index})"
            )
    return name


class _RateLimitWire(msgspec.Struct, forbid_unknown_fields=True):
    count: int
    per: float


class _QueueWire(msgspec.Struct):
    # Unknown fields are ignored, so a declaration stored by a newer version (with more
    # options) still loads in an older worker during a rolling upgrade.
    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate_limit: _RateLimitWire | None = None
    partitioned: bool = False


@dataclass(frozen=True)
class Queue:
    """A declared queue. Invalid settings raise :class:`ConfigurationError` at construction.

    ``rate_limit`` also accepts what :func:`parse_rate_limit` reads (``"100/m"``,
    ``(100, 60)``); it is stored as a :class:`RateLimit`.
    """

    name: str
    """The queue's name; see :func:`validate_queue_name`."""
    concurrency: int | None = None
    """Most workflows of this queue running at once across all workers; None: no limit."""
    worker_concurrency: int | None = None
    """Most workflows of this queue running at once in one worker; None: no limit."""
    rate_limit: RateLimit | None = None
    """Most starts per period across all workers; None: no limit."""
    partitioned: bool = False
    """True: each limit applies per partition key instead of to the whole queue."""

    def __post_init__(self) -> None:
        validate_queue_name(self.name)
        for option in ("concurrency", "worker_concurrency"):
            value = getattr(self, option)
            if value is not None and (not _is_int(value) or value < 1):
                raise ConfigurationError(
                    f"queue {self.name!r}: {option} must be an integer >= 1 or None, got {value!r}"
                )
        if (
            self.concurrency is not None
            and self.worker_concurrency is not None
            and self.worker_concurrency > self.concurrency
        ):
            raise ConfigurationError(
                f"queue {self.name!r}: worker_concurrency ({self.worker_concurrency}) may not "
                f"exceed concurrency ({self.concurrency})"
            )
        try:
            rate = parse_rate_limit(self.rate_limit)
        except ConfigurationError as exc:
            raise ConfigurationError(f"queue {self.name!r}: {exc}") from exc
        object.__setattr__(self, "rate_limit", rate)
        if not isinstance(self.partitioned, bool):
            raise ConfigurationError(
                f"queue {self.name!r}: partitioned must be True or False, got {self.partitioned!r}"
            )

    @property
    def limited(self) -> bool:
        """True when a claim must respect a limit (or go round partitions): such queues are
        claimed one at a time, serialised with every other claimer of the queue."""
        return (
            self.concurrency is not None
            or self.worker_concurrency is not None
            or self.rate_limit is not None
            or self.partitioned
        )

    def describe(self) -> str:
        """The limits in one line (``concurrency=10, rate_limit=100/m``), or ``no limits``."""
        parts = []
        if self.concurrency is not None:
            parts.append(f"concurrency={self.concurrency}")
        if self.worker_concurrency is not None:
            parts.append(f"worker_concurrency={self.worker_concurrency}")
        if self.rate_limit is not None:
            parts.append(f"rate_limit={self.rate_limit}")
        if self.partitioned:
            parts.append("partitioned")
        return ", ".join(parts) or "no limits"

    def to_json(self) -> str:
        """The declaration as a JSON object (the inverse of :meth:`from_json`)."""
        rate = self.rate_limit
        wire = _QueueWire(
            name=self.name,
            concurrency=self.concurrency,
            worker_concurrency=self.worker_concurrency,
            rate_limit=_RateLimitWire(rate.count, rate.per) if rate is not None else None,
            partitioned=self.partitioned,
        )
        return msgspec.json.encode(wire).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> Queue:
        """Read a declaration written by :meth:`to_json`, validating it again."""
        try:
            wire = msgspec.json.decode(data, type=_QueueWire)
        except msgspec.DecodeError as exc:  # ValidationError is a subclass
            raise ConfigurationError(
                f"not a stored queue declaration: {exc} (in {data[:200]!r})"
            ) from exc
        rate = wire.rate_limit
        return cls(
            name=wire.name,
            concurrency=wire.concurrency,
            worker_concurrency=wire.worker_concurrency,
            rate_limit=RateLimit(rate.count, rate.per) if rate is not None else None,
            partitioned=wire.partitioned,
        )


@dataclass(frozen=True)
class QueueRecord:
    """A queue as the system database records it: the limits in force and the app version
    whose declaration they are (None: only its name was recorded, no version declared it)."""

    queue: Queue
    app_version: str | None

    @property
    def limited(self) -> bool:
        """True when any limit applies (a partitioned queue counts: its claims go round)."""
        return self.queue.limited


__all__ = [
    "DEFAULT_QUEUE",
    "MAX_QUEUE_NAME_LENGTH",
    "Queue",
    "QueueRecord",
    "RateLimit",
    "parse_rate_limit",
    "validate_queue_name",
]
