"""Time limits: busy code is interrupted; code that finished in time never is, however close
the race; limits are per thread; disarm reports and cancels; fork gets a fresh timer."""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from taskflow.errors import ConfigurationError, SoftTimeLimitExceeded, TimeLimitExceeded
from taskflow.limits import TimeLimits, Token, limit, time_limits

GENEROUS = 20.0
"""Seconds after which a busy loop gives up: far beyond any limit under test, so reaching it
means the limit did not work (and the test fails instead of hanging)."""


class OtherLimit(Exception):
    """A second exception type, to tell which thread's limit fired."""


def spin(seconds: float) -> int:
    """Run Python bytecode (no C-level blocking) for ``seconds``."""
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        count += 1
    return count


def wait_for(predicate: Callable[[], bool], timeout: float = GENEROUS) -> None:
    """Poll ``predicate`` until it holds, failing the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not reached within {timeout}s")
        time.sleep(0.001)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Let the timer thread take the GIL from a busy thread quickly, so deadlines fire close
    to their time and the end-of-block race is actually exercised."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


def test_busy_loop_is_interrupted_well_before_a_generous_bound() -> None:
    start = time.monotonic()
    with pytest.raises(SoftTimeLimitExceeded), limit(0.05, SoftTimeLimitExceeded):
        spin(GENEROUS)
    elapsed = time.monotonic() - start
    assert 0.05 <= elapsed < 5


def test_no_limit_means_no_interruption() -> None:
    with limit(None, SoftTimeLimitExceeded):
        assert spin(0.01) > 0


def test_block_that_finished_is_never_interrupted_afterwards(fast_switching: None) -> None:
    tiny = [0.0002, 0.0005, 0.0008, 0.001, 0.0015, 0.003]
    interrupted = completed = 0
    last_deadline = time.monotonic()
    for index in range(1500):
        seconds = tiny[index % len(tiny)]
        last_deadline = max(last_deadline, time.monotonic() + seconds)
        # Only the `with` statement is inside the try: an exception it raises belongs to the
        # limit. Anything raised from here on, outside it, escapes and fails the test.
        try:
            with limit(seconds, SoftTimeLimitExceeded):
                spin(0.001)
        except SoftTimeLimitExceeded:
            interrupted += 1
        else:
            completed += 1
    # Every deadline has passed by the end of this loop; a late exception would land in it.
    spin(max(0.0, last_deadline - time.monotonic()) + 0.2)
    assert interrupted > 0, "no limit fired: the race was not exercised"
    assert completed > 0, "every block was interrupted: the race was not exercised"
    assert time_limits.pending == 0


def test_nested_limits_inner_fires_outer_survives() -> None:
    caught = False
    with limit(GENEROUS, OtherLimit):
        try:
            with limit(0.02, SoftTimeLimitExceeded):
                spin(GENEROUS)
        except SoftTimeLimitExceeded:
            caught = True
        spin(0.05)  # still inside the outer limit, which must not fire
    assert caught
    spin(0.05)


def test_nested_limits_outer_fires_through_inner() -> None:
    start = time.monotonic()
    with (
        pytest.raises(TimeLimitExceeded),
        limit(0.03, TimeLimitExceeded),
        limit(GENEROUS, SoftTimeLimitExceeded),
    ):
        spin(GENEROUS)
    assert time.monotonic() - start < 5


def test_leaving_a_block_ends_limits_opened_inside_it() -> None:
    outer = limit(GENEROUS, OtherLimit)
    inner = limit(0.02, SoftTimeLimitExceeded)
    before = time_limits.pending
    outer.__enter__()
    inner.__enter__()  # its exit is skipped, as when an exception surfaces at its start
    assert time_limits.pending == before + 2
    outer.__exit__(None, None, None)
    assert time_limits.pending == before
    spin(0.2)  # the inner deadline passes here: it must not fire


def test_raw_tokens_do_not_nest() -> None:
    limits = TimeLimits()
    me = threading.get_ident()
    first = limits.arm(me, 60, SoftTimeLimitExceeded)
    second = limits.arm(me, 60, SoftTimeLimitExceeded)
    limits.disarm(first)
    assert limits.pending == 1
    limits.disarm(second)
    assert limits.pending == 0


def test_two_threads_with_different_limits() -> None:
    results: dict[str, tuple[str, float]] = {}
    done = threading.Event()

    def run(name: str, seconds: float, exc_type: type[BaseException], work: float) -> None:
        start = time.monotonic()
        try:
            with limit(seconds, exc_type):
                spin(work)
            outcome = "completed"
        except BaseException as exc:
            outcome = type(exc).__name__
        results[name] = (outcome, time.monotonic() - start)
        if name == "finisher":
            # Keep running Python code until the others are done: a stray exception from
            # another thread's limit would end this thread without recording "clean".
            while not done.is_set() and time.monotonic() - start < GENEROUS:
                spin(0.001)
            results["finisher-after"] = ("clean", 0.0)

    threads = [
        threading.Thread(target=run, args=("short", 0.1, SoftTimeLimitExceeded, GENEROUS)),
        threading.Thread(target=run, args=("long", 0.4, OtherLimit, GENEROUS)),
        threading.Thread(target=run, args=("finisher", 5.0, TimeLimitExceeded, 0.05)),
    ]
    for thread in threads:
        thread.start()
    threads[0].join(GENEROUS)
    threads[1].join(GENEROUS)
    done.set()
    threads[2].join(GENEROUS)
    assert not any(thread.is_alive() for thread in threads)

    short_outcome, short_elapsed = results["short"]
    long_outcome, long_elapsed = results["long"]
    assert short_outcome == "SoftTimeLimitExceeded"
    assert long_outcome == "OtherLimit"
    assert 0.1 <= short_elapsed < long_elapsed
    assert 0.4 <= long_elapsed < 10
    assert results["finisher"][0] == "completed"
    assert results["finisher-after"] == ("clean", 0.0)


def test_disarm_before_deadline_returns_false() -> None:
    limits = TimeLimits()
    token = limits.arm(threading.get_ident(), 60, SoftTimeLimitExceeded)
    assert limits.pending == 1
    assert limits.disarm(token) is False
    assert limits.disarm(token) is False  # twice is harmless
    assert token.fired is False
    assert limits.pending == 0


def test_disarm_after_the_exception_was_raised_returns_true() -> None:
    limits = TimeLimits()
    token = limits.arm(threading.get_ident(), 0.02, SoftTimeLimitExceeded)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            spin(GENEROUS)
    finally:
        fired = limits.disarm(token)
    assert fired is True
    assert token.fired is True


def _blocked_thread(
    release: threading.Event, outcome: list[str]
) -> tuple[threading.Thread, threading.Event]:
    """A thread blocked in C code (waiting on an event) and then running Python code;
    ``outcome`` gets what it saw."""
    waiting = threading.Event()

    def body() -> None:
        try:
            waiting.set()
            release.wait(GENEROUS)
            spin(0.2)
            outcome.append("clean")
        except BaseException as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=body)
    thread.start()
    waiting.wait(GENEROUS)
    return thread, waiting


def test_thread_blocked_in_c_sees_the_exception_when_it_returns() -> None:
    limits = TimeLimits()
    release = threading.Event()
    outcome: list[str] = []
    thread, _ = _blocked_thread(release, outcome)
    assert thread.ident is not None
    token = limits.arm(thread.ident, 0.02, SoftTimeLimitExceeded)
    wait_for(lambda: token.fired)
    assert outcome == []  # blocked in C: nothing raised yet
    release.set()
    thread.join(GENEROUS)
    assert outcome == ["SoftTimeLimitExceeded"]
    limits.disarm(token)


def test_disarm_cancels_a_fired_but_undelivered_exception() -> None:
    limits = TimeLimits()
    release = threading.Event()
    outcome: list[str] = []
    thread, _ = _blocked_thread(release, outcome)
    assert thread.ident is not None
    token = limits.arm(thread.ident, 0.02, SoftTimeLimitExceeded)
    wait_for(lambda: token.fired)
    assert limits.disarm(token) is True  # fired...
    release.set()
    thread.join(GENEROUS)
    assert outcome == ["clean"]  # ...but never raised: its block had ended


def test_disarm_of_an_inner_limit_keeps_a_later_outer_exception() -> None:
    # Both fire while the thread is blocked; the outer one was set last, so disarming the
    # inner one must not clear it.
    limits = TimeLimits()
    release = threading.Event()
    outcome: list[str] = []
    thread, _ = _blocked_thread(release, outcome)
    assert thread.ident is not None
    inner = limits.arm(thread.ident, 0.01, SoftTimeLimitExceeded)
    wait_for(lambda: inner.fired)
    outer = limits.arm(thread.ident, 0.01, OtherLimit)
    wait_for(lambda: outer.fired)
    assert limits.disarm(inner) is True
    release.set()
    thread.join(GENEROUS)
    assert outcome == ["OtherLimit"]
    assert limits.disarm(outer) is True


def test_limit_for_an_ended_thread_fires_harmlessly() -> None:
    limits = TimeLimits()
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()
    assert thread.ident is not None
    token = limits.arm(thread.ident, 0.01, SoftTimeLimitExceeded)
    wait_for(lambda: token.fired)
    assert limits.disarm(token) is True


def test_many_long_limits_disarmed_early_do_not_pile_up() -> None:
    limits = TimeLimits()
    me = threading.get_ident()
    for _ in range(1000):
        limits.disarm(limits.arm(me, 3600, SoftTimeLimitExceeded))
    assert len(limits._heap) < 200
    assert limits.pending == 0


def test_repr_names_thread_limit_and_exception() -> None:
    limits = TimeLimits()
    token = limits.arm(threading.get_ident(), 60, SoftTimeLimitExceeded)
    try:
        text = repr(token)
        assert "60.0s" in text
        assert "SoftTimeLimitExceeded" in text
        assert str(threading.get_ident()) in text
    finally:
        limits.disarm(token)


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ((0, SoftTimeLimitExceeded), "got 0"),
        ((-1.5, SoftTimeLimitExceeded), "got -1.5"),
        ((float("nan"), SoftTimeLimitExceeded), "got nan"),
        ((float("inf"), SoftTimeLimitExceeded), "got inf"),
        ((True, SoftTimeLimitExceeded), "got True"),
        (("5", SoftTimeLimitExceeded), "got '5'"),
        ((1, "SoftTimeLimitExceeded"), "got 'SoftTimeLimitExceeded'"),
        ((1, SoftTimeLimitExceeded()), "got SoftTimeLimitExceeded()"),
        ((1, int), "got <class 'int'>"),
    ],
)
def test_invalid_limits_are_refused_with_the_value(args: tuple[Any, Any], shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        limit(*args)
    assert shown in str(info.value)
    with pytest.raises(ConfigurationError):
        TimeLimits().arm(threading.get_ident(), *args)


def test_invalid_thread_id_and_token() -> None:
    limits = TimeLimits()
    with pytest.raises(ConfigurationError, match="got -1"):
        limits.arm(-1, 1, SoftTimeLimitExceeded)
    with pytest.raises(ConfigurationError, match="got 'abc'"):
        limits.arm("abc", 1, SoftTimeLimitExceeded)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="got None"):
        limits.disarm(None)  # type: ignore[arg-type]


def test_a_limit_object_cannot_be_entered_twice_at_once() -> None:
    guard = limit(60, SoftTimeLimitExceeded)
    with guard, pytest.raises(ConfigurationError, match="entered twice"), guard:
        pass
    with guard:  # reusable once left
        pass


def _fork(child: Callable[[], int], in_parent: Callable[[], object] = lambda: None) -> int:
    """Run ``child`` in a forked process and ``in_parent`` at once in this one; return the
    child's exit status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # multi-threaded fork, 3.12+
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = child()
        finally:
            os._exit(code)
    in_parent()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_after_fork_the_child_gets_a_working_timer() -> None:
    with limit(60, SoftTimeLimitExceeded):  # the parent's timer thread is running
        pass

    def child() -> int:
        try:
            with limit(0.05, SoftTimeLimitExceeded):
                spin(GENEROUS)
        except SoftTimeLimitExceeded:
            return 0
        return 3

    assert _fork(child) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_keeps_the_forking_threads_deadline_and_drops_the_others() -> None:
    limits = TimeLimits()
    release = threading.Event()
    outcome: list[str] = []
    other, _ = _blocked_thread(release, outcome)
    assert other.ident is not None
    others = limits.arm(other.ident, 60, OtherLimit)
    mine = limits.arm(threading.get_ident(), 0.3, SoftTimeLimitExceeded)

    def child() -> int:
        if limits.pending != 1:
            return 4  # the other thread's deadline should have been dropped
        try:
            spin(GENEROUS)
        except SoftTimeLimitExceeded:
            return 0
        return 3

    try:
        # The parent's copy of the deadline must not fire here while it waits for the child.
        status = _fork(child, in_parent=lambda: limits.disarm(mine))
    finally:
        limits.disarm(mine)
        limits.disarm(others)
        release.set()
        other.join(GENEROUS)
    assert status == 0
    assert outcome == ["clean"]


def test_token_type_is_exported() -> None:
    token = time_limits.arm(threading.get_ident(), 60, SoftTimeLimitExceeded)
    try:
        assert isinstance(token, Token)
    finally:
        time_limits.disarm(token)
