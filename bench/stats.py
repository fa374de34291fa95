"""Summaries of timing samples, and how figures are printed."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``pct`` % at or below it."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    ordered = sorted(samples)
    rank = math.ceil(pct / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class Summary:
    """Median, p95 and range of some samples (in their own unit, usually seconds)."""

    count: int
    median: float
    p95: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        """Summarize at least one sample."""
        if not samples:
            raise ValueError("summary of no samples")
        return cls(
            count=len(samples),
            median=statistics.median(samples),
            p95=percentile(samples, 95),
            minimum=min(samples),
            maximum=max(samples),
        )


def ms(seconds: float, digits: int = 3) -> str:
    """Seconds shown as milliseconds."""
    return f"{seconds * 1000:.{digits}f}"


def rate(per_second: float) -> str:
    """A rate shown as a whole number with thousands separators."""
    return f"{per_second:,.0f}"
