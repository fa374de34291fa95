"""Retry policies: validation, exponential backoff, cap and jitter."""

from __future__ import annotations

import random

import pytest

from taskflow.errors import ConfigurationError
from taskflow.retry import RetryPolicy

OWNER = "step 'charge'"


def test_defaults_are_valid_and_never_retry() -> None:
    policy = RetryPolicy()
    assert policy.validate(OWNER) is policy
    assert policy.max_retries == 0
    assert not policy.should_retry(ValueError(), 0)


@pytest.mark.parametrize(
    ("kwargs", "option", "shown"),
    [
        ({"max_retries": -1}, "max_retries", "-1"),
        ({"max_retries": 1.5}, "max_retries", "1.5"),
        ({"backoff": -0.1}, "retry_backoff", "-0.1"),
        ({"backoff_factor": 0.5}, "retry_backoff_factor", "0.5"),
        ({"backoff_factor": 0.0}, "retry_backoff_factor", "0.0"),
        ({"backoff_max": -1.0}, "retry_backoff_max", "-1.0"),
        ({"autoretry_for": (ValueError, int)}, "autoretry_for", "<class 'int'>"),
        ({"autoretry_for": ("ValueError",)}, "autoretry_for", "'ValueError'"),
    ],
)
def test_invalid_options_name_owner_option_and_value(
    kwargs: dict[str, object], option: str, shown: str
) -> None:
    policy = RetryPolicy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as info:
        policy.validate(OWNER)
    message = str(info.value)
    assert OWNER in message
    assert option in message
    assert shown in message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": 0},
        {"max_retries": 10},
        {"backoff": 0.0},
        {"backoff_factor": 1.0},
        {"backoff_max": 0.0},
        {"autoretry_for": (OSError, KeyError)},
        {"autoretry_for": ()},
    ],
)
def test_boundary_options_are_valid(kwargs: dict[str, object]) -> None:
    policy = RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert policy.validate(OWNER) is policy


def test_should_retry_counts_and_filters_by_type() -> None:
    policy = RetryPolicy(max_retries=2, autoretry_for=(OSError,))
    assert policy.should_retry(OSError(), 0)
    assert policy.should_retry(ConnectionError(), 1)  # a subclass counts
    assert not policy.should_retry(OSError(), 2)
    assert not policy.should_retry(ValueError(), 0)
    assert not RetryPolicy(max_retries=2, autoretry_for=()).should_retry(OSError(), 0)


def test_delay_grows_exponentially_without_jitter() -> None:
    policy = RetryPolicy(backoff=0.1, backoff_factor=2.0, backoff_max=100.0, jitter=False)
    delays = [policy.delay(n) for n in range(1, 6)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])


def test_delay_factor_one_is_constant() -> None:
    policy = RetryPolicy(backoff=3.0, backoff_factor=1.0, backoff_max=100.0, jitter=False)
    assert [policy.delay(n) for n in (1, 2, 50)] == [3.0, 3.0, 3.0]


def test_delay_is_capped() -> None:
    policy = RetryPolicy(backoff=1.0, backoff_factor=3.0, backoff_max=5.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 3.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize("retry_number", [1_000, 1_025, 10_000, 10**6])
def test_delay_stays_capped_for_huge_retry_numbers(retry_number: int) -> None:
    policy = RetryPolicy(backoff=0.5, backoff_factor=2.0, backoff_max=60.0, jitter=False)
    assert policy.delay(retry_number) == 60.0
    assert RetryPolicy(backoff=0.0, backoff_factor=2.0, jitter=False).delay(retry_number) == 0.0


def test_jitter_keeps_between_half_and_all_of_the_delay() -> None:
    policy = RetryPolicy(backoff=1.0, backoff_factor=2.0, backoff_max=100.0, jitter=True)
    assert policy.delay(3, rand=lambda: 0.0) == pytest.approx(2.0)
    assert policy.delay(3, rand=lambda: 0.5) == pytest.approx(3.0)
    assert policy.delay(3, rand=lambda: 1.0) == pytest.approx(4.0)


def test_jitter_applies_after_the_cap() -> None:
    policy = RetryPolicy(backoff=1.0, backoff_factor=10.0, backoff_max=8.0, jitter=True)
    assert policy.delay(5, rand=lambda: 0.0) == pytest.approx(4.0)
    assert policy.delay(5, rand=lambda: 1.0) == pytest.approx(8.0)


def test_jitter_with_real_randomness_stays_in_bounds() -> None:
    rng = random.Random(1234)
    policy = RetryPolicy(backoff=0.2, backoff_factor=2.0, backoff_max=5.0, jitter=True)
    for n in range(1, 12):
        raw = min(0.2 * 2.0 ** (n - 1), 5.0)
        samples = [policy.delay(n, rand=rng.random) for _ in range(50)]
        assert all(raw / 2 <= d <= raw for d in samples)
        assert len(set(samples)) > 1  # it does vary
