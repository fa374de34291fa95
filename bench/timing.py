"""Timing calls: one by one, in batches, or taking turns."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.stats import Summary


@dataclass(frozen=True)
class Batch:
    """``calls`` consecutive calls of one function, each timed."""

    per_call: Summary
    """Seconds per call."""
    wall: float
    """Seconds for the whole batch."""
    calls: int

    @property
    def calls_per_second(self) -> float:
        """Throughput over the batch's wall time."""
        return self.calls / self.wall


def time_batch(fn: Callable[[], object], calls: int) -> Batch:
    """Call ``fn`` ``calls`` times, timing each call and the whole batch."""
    gc.collect()
    perf = time.perf_counter
    samples: list[float] = []
    started = perf()
    for _ in range(calls):
        before = perf()
        fn()
        samples.append(perf() - before)
    wall = perf() - started
    return Batch(Summary.of(samples), wall, calls)


def time_interleaved(fns: Sequence[Callable[[], object]], times: int) -> list[Summary]:
    """Call each of ``fns`` in turn, ``times`` times over, timing every call; one summary per
    function. Interleaving means a burst of outside load (another process's fsync) hits all
    of them alike, so it cannot pass for a difference between them."""
    gc.collect()
    perf = time.perf_counter
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(times):
        for fn, into in zip(fns, samples, strict=True):
            before = perf()
            fn()
            into.append(perf() - before)
    return [Summary.of(s) for s in samples]
