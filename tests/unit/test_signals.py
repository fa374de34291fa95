"""Signals: connecting (plain, decorator, per sender), sending, isolation of failing
receivers, weak references and thread safety."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

import pytest

from taskflow import signals
from taskflow.errors import ConfigurationError
from taskflow.signals import Signal

BUILTIN = [
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "task_prerun",
    "task_postrun",
    "task_success",
    "task_failure",
    "task_retry",
]


class Task:
    """Stands in for a workflow object as a sender."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_connect_plain_call_returns_the_receiver() -> None:
    sig = Signal("s")
    calls: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> str:
        calls.append(kwargs)
        return "done"

    assert sig.connect(receiver) is receiver
    responses = sig.send(sender="me", value=1)
    assert responses == [(receiver, "done")]
    assert calls == [{"signal": sig, "sender": "me", "value": 1}]


def test_bare_decorator_keeps_the_function() -> None:
    sig = Signal("s")

    @sig.connect
    def receiver(sender: object, **kwargs: Any) -> int:
        return 42

    assert receiver(sender=None) == 42  # still the plain function
    assert sig.send(sender=None) == [(receiver, 42)]


def test_decorator_with_sender_filters_by_sender() -> None:
    sig = Signal("s")
    mine, other = Task("mine"), Task("other")
    seen: list[object] = []

    @sig.connect(sender=mine)
    def receiver(sender: object, **kwargs: Any) -> None:
        seen.append(sender)

    assert callable(receiver)
    sig.send(sender=other)
    sig.send(sender=mine)
    assert seen == [mine]


def test_any_sender_and_specific_sender_receivers_both_run_in_connect_order() -> None:
    sig = Signal("s")
    task = Task("t")
    order: list[str] = []
    sig.connect(lambda **kw: order.append("any"))
    sig.connect(lambda **kw: order.append("task"), sender=task)
    sig.send(sender=task)
    sig.send(sender=Task("other"))
    assert order == ["any", "task", "any"]


def test_string_senders_match_by_value() -> None:
    sig = Signal("s")
    seen: list[object] = []
    sig.connect(lambda sender, **kw: seen.append(sender), sender="orders.process")
    built = "".join(["orders", ".", "process"])  # equal, but not the same object
    sig.send(sender=built)
    sig.send(sender="orders.other")
    assert seen == [built]


def test_connecting_twice_is_one_connection() -> None:
    sig = Signal("s")
    calls: list[int] = []

    def receiver(**kwargs: Any) -> None:
        calls.append(1)

    sig.connect(receiver)
    sig.connect(receiver)
    sig.send(sender=None)
    assert calls == [1]
    assert len(sig.receivers) == 1


def test_dispatch_uid_deduplicates_distinct_functions() -> None:
    sig = Signal("s")
    calls: list[str] = []
    sig.connect(lambda **kw: calls.append("first"), dispatch_uid="audit")
    sig.connect(lambda **kw: calls.append("second"), dispatch_uid="audit")
    sig.send(sender=None)
    assert calls == ["first"]
    assert sig.disconnect(dispatch_uid="audit") is True
    assert sig.send(sender=None) == []


def test_bound_methods_connect_once_and_disconnect() -> None:
    sig = Signal("s")

    class Listener:
        def __init__(self) -> None:
            self.calls = 0

        def on(self, **kwargs: Any) -> None:
            self.calls += 1

    listener = Listener()
    sig.connect(listener.on)
    sig.connect(listener.on)  # a new bound-method object, same connection
    sig.send(sender=None)
    assert listener.calls == 1
    assert sig.disconnect(listener.on) is True
    sig.send(sender=None)
    assert listener.calls == 1


def test_disconnect_reports_whether_something_was_removed() -> None:
    sig = Signal("s")
    task = Task("t")

    def receiver(**kwargs: Any) -> None:
        pass

    sig.connect(receiver, sender=task)
    assert sig.disconnect(receiver) is False  # connected for `task`, not for any sender
    assert sig.disconnect(receiver, sender=task) is True
    assert sig.disconnect(receiver, sender=task) is False
    assert sig.receivers == []


def test_disconnect_needs_a_receiver_or_uid() -> None:
    with pytest.raises(ConfigurationError, match="receiver or a dispatch_uid"):
        Signal("s").disconnect()


def test_failing_receiver_is_logged_returned_and_does_not_stop_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sig = Signal("my_signal")
    after: list[int] = []

    def broken(**kwargs: Any) -> None:
        raise ValueError("boom")

    sig.connect(broken)
    sig.connect(lambda **kw: after.append(1))
    with caplog.at_level(logging.ERROR, logger="taskflow.signals"):
        responses = sig.send(sender="worker")
    assert after == [1]
    assert responses[0][0] is broken
    assert isinstance(responses[0][1], ValueError)
    assert responses[1][1] is None
    [record] = [r for r in caplog.records if r.name == "taskflow.signals"]
    assert "my_signal" in record.getMessage()
    assert "ValueError" in record.getMessage()
    assert record.exc_info is not None  # the traceback is logged


def test_base_exceptions_are_not_swallowed() -> None:
    sig = Signal("s")

    def interrupt(**kwargs: Any) -> None:
        raise KeyboardInterrupt

    sig.connect(interrupt)
    with pytest.raises(KeyboardInterrupt):
        sig.send(sender=None)


def test_strong_reference_is_the_default() -> None:
    sig = Signal("s")

    def make() -> None:
        def local(**kwargs: Any) -> str:
            return "alive"

        sig.connect(local)

    make()
    gc.collect()
    assert [result for _, result in sig.send(sender=None)] == ["alive"]


def test_weak_receivers_vanish_with_their_function() -> None:
    sig = Signal("s")

    def make() -> None:
        def local(**kwargs: Any) -> str:
            return "alive"

        sig.connect(local, weak=True)
        assert len(sig.receivers) == 1

    make()
    gc.collect()
    assert sig.send(sender=None) == []
    assert sig.receivers == []


def test_weak_bound_method_lives_as_long_as_its_object() -> None:
    sig = Signal("s")

    class Listener:
        def on(self, **kwargs: Any) -> str:
            return "hi"

    listener = Listener()
    sig.connect(listener.on, weak=True)  # the bound method itself dies at once
    gc.collect()
    assert [result for _, result in sig.send(sender=None)] == ["hi"]
    assert sig.receivers[0].weak is True
    del listener
    gc.collect()
    assert sig.send(sender=None) == []


def test_receivers_lists_connections() -> None:
    sig = Signal("s")
    task = Task("t")

    def receiver(**kwargs: Any) -> None:
        pass

    sig.connect(receiver, sender=task, dispatch_uid="uid")
    [info] = sig.receivers
    assert info.receiver is receiver
    assert info.sender is task
    assert info.dispatch_uid == "uid"
    assert info.weak is False
    assert "1 receivers" in repr(sig)


@pytest.mark.parametrize(
    ("receiver", "message"),
    [
        ("not callable", "must be callable"),
        (lambda sender: None, r"must accept \*\*kwargs"),
    ],
)
def test_invalid_receivers_are_refused(receiver: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        Signal("named").connect(receiver)
    assert "named" in str(info.value)


def test_builtin_callables_without_signature_are_accepted() -> None:
    sig = Signal("s")
    sig.connect(dict)  # dict(**kwargs) works; its signature cannot be inspected
    [(_, result)] = sig.send(sender=None, a=1)
    assert result["a"] == 1


def test_invalid_name_and_weak_flag() -> None:
    with pytest.raises(ConfigurationError, match="non-empty name"):
        Signal("")
    with pytest.raises(ConfigurationError, match="weak must be a bool, got 1"):
        Signal("s").connect(lambda **kw: None, weak=1)  # type: ignore[call-overload]


def test_concurrent_connect_disconnect_and_send() -> None:
    sig = Signal("s")
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            for round_ in range(200):

                def receiver(**kwargs: Any) -> int:
                    return index

                sig.connect(receiver, dispatch_uid=(index, round_))
                sig.send(sender=None)
                assert sig.disconnect(dispatch_uid=(index, round_)) is True
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert sig.receivers == []


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_signals_exist_with_docs(name: str) -> None:
    sig = getattr(signals, name)
    assert isinstance(sig, Signal)
    assert sig.name == name
    assert sig.__doc__ is not None and "Sent" in sig.__doc__
    assert name in signals.__all__


def test_task_failure_with_celery_arguments() -> None:
    task = Task("orders.process")
    got: dict[str, Any] = {}

    def on_failure(sender: object, task_id: str, exception: BaseException, **kwargs: Any) -> None:
        got.update(sender=sender, task_id=task_id, exception=exception, **kwargs)

    signals.task_failure.connect(on_failure, sender=task)
    try:
        error = RuntimeError("x")
        signals.task_failure.send(
            sender=task,
            task_id="wf-1",
            exception=error,
            args=(1,),
            kwargs={},
            traceback=None,
            einfo=None,
        )
    finally:
        assert signals.task_failure.disconnect(on_failure, sender=task)
    assert got["task_id"] == "wf-1"
    assert got["exception"] is error
    assert got["signal"] is signals.task_failure
