"""Time, injectable.

Everything that reads the wall clock or sleeps goes through a :class:`Clock`, so tests can
drive long durations (retry backoff, timeouts) without waiting for them.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What taskflow needs from time."""

    def now(self) -> float:
        """Seconds since the epoch (wall clock)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep()``."""
        if seconds > 0:
            time.sleep(seconds)


def now_ms(clock: Clock) -> int:
    """The clock's wall time in whole milliseconds, the unit every timestamp column holds."""
    return int(clock.now() * 1000)


__all__ = ["Clock", "SystemClock", "now_ms"]
