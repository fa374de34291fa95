"""``taskflow queues list``: limits in force, depths per queue and per partition."""

from __future__ import annotations

from click.testing import CliRunner

from taskflow.broker import Broker
from taskflow.cli import main
from taskflow.queues import Queue, RateLimit

from .queueing import NOW, queued


def test_queues_list_shows_limits_depths_and_partitions(broker: Broker, database_url: str) -> None:
    broker.declare_queues(
        [
            Queue("mail", concurrency=10, rate_limit=RateLimit(100, 60.0)),
            Queue("per-user", concurrency=1, partitioned=True),
        ],
        "v7",
        NOW,
    )
    broker.enqueue(
        [queued(f"m{i}", queue="mail") for i in range(3)]
        + [queued("u1", queue="per-user", partition_key="user-1")]
        + [queued(f"u2-{i}", queue="per-user", partition_key="user-2") for i in range(2)]
        + [queued("later", queue="mail", delay_until=NOW + 60_000)],
        NOW,
    )
    broker.claim("w", ["mail"], "v7", 1, NOW)
    result = CliRunner().invoke(main, ["queues", "list", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert lines[0][:4] == ["QUEUE", "ENQUEUED", "DELAYED", "RUNNING"]
    rows = {line[0]: line[1:] for line in lines[1:]}
    assert rows["mail"][:3] == ["2", "1", "1"]
    assert " ".join(rows["mail"][3:]) == "concurrency=10, rate_limit=100/m v7"
    assert rows["per-user"][:3] == ["3", "0", "0"]
    assert rows["[user-1]"] == ["1", "0", "0"]
    assert rows["[user-2]"] == ["2", "0", "0"]


def test_queues_list_refuses_app_and_url_together(sqlite_url: str) -> None:
    result = CliRunner().invoke(main, ["queues", "list", "-A", "x", "--database-url", sqlite_url])
    assert result.exit_code != 0
