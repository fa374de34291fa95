"""The text table of ``taskflow queues list``: limits and depths per queue and partition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from taskflow.models import QueueDepth
from taskflow.queues import QueueRecord

HEADER = ("QUEUE", "ENQUEUED", "DELAYED", "RUNNING", "LIMITS", "DECLARED BY")


def queue_table(records: Mapping[str, QueueRecord], depths: Sequence[QueueDepth]) -> list[str]:
    """One line per queue (totals), then one per partition of a partitioned queue, under a
    header; columns padded to their widest cell. Queues holding work but never recorded by a
    worker are listed too, with unknown limits."""
    totals: dict[str, list[int]] = {}
    partitions: dict[str, list[QueueDepth]] = {}
    for d in depths:
        row = totals.setdefault(d.queue, [0, 0, 0])
        row[0] += d.enqueued
        row[1] += d.delayed
        row[2] += d.running
        if d.partition_key is not None:
            partitions.setdefault(d.queue, []).append(d)
    rows: list[tuple[str, ...]] = [HEADER]
    for name in sorted(set(records) | set(totals)):
        record = records.get(name)
        enqueued, delayed, running = totals.get(name, [0, 0, 0])
        limits = record.queue.describe() if record is not None else "? (not recorded)"
        version = (record.app_version or "-") if record is not None else "-"
        rows.append((name, str(enqueued), str(delayed), str(running), limits, version))
        for d in partitions.get(name, []):
            key = f"  [{d.partition_key}]"
            rows.append((key, str(d.enqueued), str(d.delayed), str(d.running), "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


__all__ = ["HEADER", "queue_table"]
