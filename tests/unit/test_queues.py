"""Queue declarations: rate-limit parsing, name and option validation, JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from taskflow.errors import ConfigurationError
from taskflow.queues import (
    DEFAULT_QUEUE,
    Queue,
    RateLimit,
    parse_rate_limit,
    validate_queue_name,
)

# -- rate limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "per"),
    [
        ("100/s", 100, 1.0),
        ("100/m", 100, 60.0),
        ("5/h", 5, 3600.0),
        ("7/sec", 7, 1.0),
        ("7/min", 7, 60.0),
        ("7/hour", 7, 3600.0),
        ("  12/m\n", 12, 60.0),
        ("1/s", 1, 1.0),
    ],
)
def test_parse_strings(text: str, count: int, per: float) -> None:
    assert parse_rate_limit(text) == RateLimit(count, per)


def test_parse_tuple_none_and_instance() -> None:
    assert parse_rate_limit((10, 2.5)) == RateLimit(10, 2.5)
    assert parse_rate_limit((10, 60)) == RateLimit(10, 60.0)
    assert parse_rate_limit(None) is None
    rate = RateLimit(3, 1.0)
    assert parse_rate_limit(rate) is rate


@pytest.mark.parametrize(
    "value",
    [
        "",
        "100",
        "100/",
        "/m",
        "0/m",
        "-1/m",
        "1.5/s",
        "10/d",
        "10/M",
        "10 / m",
        "10/mins",
        "ten/m",
        "\u0661\u0660/m",  # Arabic-Indic digits match \d in Unicode regexes, not here
        (0, 1.0),
        (-1, 1.0),
        (1.5, 1.0),
        (True, 1.0),
        (1, 0),
        (1, -2.0),
        (1, float("inf")),
        (1, float("nan")),
        (1, True),
        (1, "60"),
        (1, 2, 3),
        (1,),
        [10, 60],
        10,
        1.0,
        {"count": 1},
    ],
)
def test_invalid_rate_limits_name_the_value(value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_rate_limit(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("rate", "shown"),
    [
        (RateLimit(100, 60), "100/m"),
        (RateLimit(3, 1), "3/s"),
        (RateLimit(9, 3600), "9/h"),
        (RateLimit(9, 2.5), "9/2.5s"),
    ],
)
def test_rate_limit_str(rate: RateLimit, shown: str) -> None:
    assert str(rate) == shown


@pytest.mark.parametrize("text", ["100/s", "100/m", "5/h"])
def test_str_parses_back_for_unit_periods(text: str) -> None:
    assert str(parse_rate_limit(text)) == text


def test_rate_limit_validates_itself() -> None:
    with pytest.raises(ConfigurationError, match="count must be an integer >= 1, got 0"):
        RateLimit(0, 1.0)
    with pytest.raises(ConfigurationError, match="got -1"):
        RateLimit(1, -1)
    assert RateLimit(1, 60) == RateLimit(1, 60.0)
    assert hash(RateLimit(1, 60)) == hash(RateLimit(1, 60.0))
    assert isinstance(RateLimit(1, 60).per, float)


def test_rate_limit_is_frozen() -> None:
    rate = RateLimit(1, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rate.count = 2  # type: ignore[misc]


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "emails", "a", "x" * 200, "reports.daily", "é-ü_1"])
def test_valid_names(name: str) -> None:
    assert validate_queue_name(name) == name
    assert Queue(name).name == name


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("", "''"),
        ("has space", "'has space'"),
        ("tab\there", "'tab\\there'"),
        ("new\nline", "'new\\nline'"),
        ("nul\x00", "'nul\\x00'"),
        ("zero\u200bwidth", "zero"),
        ("x" * 201, "201 characters"),
        (None, "None"),
        (5, "5"),
        (b"bytes", "b'bytes'"),
    ],
)
def test_invalid_names_are_refused_with_the_value(name: object, shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        validate_queue_name(name)
    assert shown in str(info.value)


def test_default_queue_name() -> None:
    assert DEFAULT_QUEUE == "default"
    assert validate_queue_name(DEFAULT_QUEUE) == "default"


# -- queue options -------------------------------------------------------------------------


def test_queue_defaults() -> None:
    queue = Queue("q")
    assert queue.concurrency is None
    assert queue.worker_concurrency is None
    assert queue.rate_limit is None
    assert queue.partitioned is False


def test_queue_accepts_the_api_md_example_and_parses_rate_limit_strings() -> None:
    queue = Queue(
        "emails",
        concurrency=10,
        worker_concurrency=2,
        rate_limit="100/m",  # type: ignore[arg-type]
        partitioned=False,
    )
    assert queue.rate_limit == RateLimit(100, 60.0)
    assert Queue("q", rate_limit=(5, 1)).rate_limit == RateLimit(5, 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"concurrency": 0}, "concurrency must be an integer >= 1 or None, got 0"),
        ({"concurrency": -3}, "got -3"),
        ({"concurrency": 1.5}, "got 1.5"),
        ({"concurrency": True}, "got True"),
        ({"concurrency": "4"}, "got '4'"),
        ({"worker_concurrency": 0}, "worker_concurrency must be an integer >= 1 or None, got 0"),
        ({"worker_concurrency": False}, "got False"),
        (
            {"concurrency": 2, "worker_concurrency": 3},
            "worker_concurrency (3) may not exceed concurrency (2)",
        ),
        ({"rate_limit": "fast"}, "'fast'"),
        ({"partitioned": 1}, "partitioned must be True or False, got 1"),
        ({"partitioned": "yes"}, "got 'yes'"),
    ],
)
def test_invalid_queue_options(kwargs: dict[str, Any], shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Queue("emails", **kwargs)
    message = str(info.value)
    assert "'emails'" in message
    assert shown in message


def test_worker_concurrency_alone_or_equal_is_fine() -> None:
    assert Queue("q", worker_concurrency=5).worker_concurrency == 5
    assert Queue("q", concurrency=3, worker_concurrency=3).concurrency == 3


def test_queue_is_frozen_and_compares_by_value() -> None:
    queue = Queue("q", concurrency=2)
    assert queue == Queue("q", concurrency=2)
    assert queue != Queue("q", concurrency=3)
    assert len({queue, Queue("q", concurrency=2)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        queue.concurrency = 5  # type: ignore[misc]


# -- JSON ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "queue",
    [
        Queue("default"),
        Queue("emails", concurrency=10, worker_concurrency=2, rate_limit=RateLimit(100, 60)),
        Queue("users", rate_limit=RateLimit(7, 2.5), partitioned=True),
        Queue("ünïcode.q", worker_concurrency=1),
    ],
)
def test_json_round_trip(queue: Queue) -> None:
    text = queue.to_json()
    assert isinstance(text, str)
    assert Queue.from_json(text) == queue
    assert Queue.from_json(text.encode()) == queue


def test_json_is_a_plain_readable_object() -> None:
    data = json.loads(Queue("emails", concurrency=10, rate_limit=RateLimit(100, 60)).to_json())
    assert data == {
        "name": "emails",
        "concurrency": 10,
        "worker_concurrency": None,
        "rate_limit": {"count": 100, "per": 60.0},
        "partitioned": False,
    }


def test_from_json_ignores_unknown_fields_and_fills_defaults() -> None:
    queue = Queue.from_json('{"name": "q", "added_by_a_newer_version": 1}')
    assert queue == Queue("q")


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        ("not json", "not json"),
        ("[]", "[]"),
        ('{"concurrency": 1}', "name"),
        ('{"name": "q", "concurrency": "2"}', "concurrency"),
        ('{"name": "q", "partitioned": 1}', "partitioned"),
        ('{"name": "q", "rate_limit": {"count": 1}}', "per"),
    ],
)
def test_from_json_rejects_malformed_data(data: str, shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Queue.from_json(data)
    assert shown in str(info.value)


def test_from_json_validates_the_values() -> None:
    with pytest.raises(ConfigurationError, match="got 0"):
        Queue.from_json('{"name": "q", "concurrency": 0}')
    with pytest.raises(ConfigurationError, match="'bad name'"):
        Queue.from_json('{"name": "bad name"}')
    with pytest.raises(ConfigurationError, match="rate limit count"):
        Queue.from_json('{"name": "q", "rate_limit": {"count": 0, "per": 1.0}}')
