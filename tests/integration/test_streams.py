"""Streams (``taskflow.write_stream``/``close_stream``, ``app.read_stream``) on both dialects:
order, live readers, how a read ends, re-reading, replay without duplicates, misuse; and one
run through real ``taskflow worker`` processes with a SIGKILL mid-stream."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import taskflow
from taskflow import (
    SerializationError,
    Status,
    Taskflow,
    TaskflowError,
    UnknownWorkflowError,
)
from taskflow.errors import ConfigurationError
from taskflow.streams import BATCH

from . import streamapp
from .helpers import PROCESS_LIMIT, SimulatedCrash, Workers, wait_for

LIMIT = 20.0
"""Seconds a test waits for something that should happen at once."""

END = object()
"""Put by :class:`Reader` after the last value."""


class Reader:
    """Iterates ``app.read_stream`` in a thread, handing each value (then :data:`END`, or
    the exception that ended the read) to the test through a queue."""

    def __init__(self, app: Taskflow, workflow_id: str, key: str) -> None:
        self.values: queue.Queue[Any] = queue.Queue()
        self._stream = app.read_stream(workflow_id, key)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for value in self._stream:
                self.values.put(value)
        except Exception as exc:
            self.values.put(exc)
            return
        self.values.put(END)

    def next(self) -> Any:
        """The next value, END, or the exception (failing after :data:`LIMIT` seconds)."""
        return self.values.get(timeout=LIMIT)

    def rest(self) -> list[Any]:
        """Every value up to END."""
        got = []
        while (value := self.next()) is not END:
            assert not isinstance(value, Exception), value
            got.append(value)
        self.thread.join(LIMIT)
        return got

    def idle(self) -> bool:
        """True if no value is waiting to be taken."""
        return self.values.empty()


def _run(wf: Any, *args: Any, workflow_id: str) -> threading.Thread:
    def target() -> None:
        # The workflow's own outcome is checked through its handle.
        with contextlib.suppress(Exception):
            wf.apply(args=args, workflow_id=workflow_id)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


class Gates:
    """Lets a workflow's steps move one at a time: ``entered(i)`` is set when step ``i`` is
    waiting, ``open(i)`` lets it return."""

    def __init__(self, count: int) -> None:
        self._entered = [threading.Event() for _ in range(count)]
        self._open = [threading.Event() for _ in range(count)]

    def wait_here(self, i: int) -> None:
        self._entered[i].set()
        assert self._open[i].wait(LIMIT), f"gate {i} was never opened"

    def entered(self, i: int) -> None:
        assert self._entered[i].wait(LIMIT), f"the workflow never reached gate {i}"

    def open(self, i: int) -> None:
        self._open[i].set()


# -- order and ending ------------------------------------------------------------------------
def test_values_come_back_in_write_order_and_close_ends_the_read(app: Taskflow) -> None:
    values: list[Any] = [None, 0, "two", [3, {"x": 3}], {"nested": {"a": [1, 2]}}, 5.5, True]
    # More than one batch, so the reader pages through the offsets.
    values += list(range(BATCH + 30))

    @app.workflow(name="s.write_all")
    def write_all() -> str:
        for value in values:
            taskflow.write_stream("out", value)
        taskflow.close_stream("out")
        taskflow.write_stream("other", "separate")
        return "done"

    handle = write_all.apply(workflow_id="w")
    assert handle.get() == "done"
    assert list(app.read_stream("w", "out")) == values
    assert list(app.read_stream("w", "other")) == ["separate"]
    # Never written, workflow finished: an empty stream, not a wait.
    assert list(app.read_stream("w", "never")) == []
    names = [s.name for s in handle.steps()]
    assert names.count("taskflow.write_stream") == len(values) + 1
    assert names.count("taskflow.close_stream") == 1


def test_a_reader_sees_each_value_as_it_is_written_and_stops_at_the_close(
    app: Taskflow,
) -> None:
    gates = Gates(4)
    gate_after_close = threading.Event()

    @app.step()
    def gate(i: int) -> None:
        gates.wait_here(i)

    @app.workflow(name="s.live")
    def live() -> None:
        gate(0)
        for i in range(1, 4):
            taskflow.write_stream("progress", i)
            gate(i)
        taskflow.close_stream("progress")
        gate_after_close.wait(LIMIT)

    thread = _run(live, workflow_id="live")
    gates.entered(0)
    early = Reader(app, "live", "progress")  # before anything is written
    gates.open(0)
    assert early.next() == 1
    gates.entered(1)
    assert early.idle()
    late = Reader(app, "live", "progress")  # while it runs: from the start
    assert late.next() == 1
    gates.open(1)
    assert early.next() == 2
    assert late.next() == 2
    gates.open(2)
    assert early.next() == 3
    assert late.next() == 3
    gates.open(3)
    # Closed while the workflow still runs: both reads end now.
    assert early.next() is END
    assert late.next() is END
    assert app.retrieve("live").status is Status.PENDING
    gate_after_close.set()
    thread.join(LIMIT)
    assert app.retrieve("live").status is Status.SUCCESS


@pytest.mark.parametrize("ending", ["success", "error"])
def test_a_read_ends_when_the_workflow_finishes_without_closing(app: Taskflow, ending: str) -> None:
    gates = Gates(1)

    @app.step()
    def gate() -> None:
        gates.wait_here(0)

    @app.workflow(name="s.unclosed")
    def unclosed() -> str:
        taskflow.write_stream("k", "a")
        gate()
        taskflow.write_stream("k", "b")
        if ending == "error":
            raise ValueError("broken after b")
        return "ok"

    thread = _run(unclosed, workflow_id="u")
    gates.entered(0)
    reader = Reader(app, "u", "k")
    assert reader.next() == "a"
    gates.open(0)
    assert reader.rest() == ["b"]
    thread.join(LIMIT)
    expected = Status.SUCCESS if ending == "success" else Status.ERROR
    assert app.retrieve("u").status is expected
    assert list(app.read_stream("u", "k")) == ["a", "b"]


def test_a_read_ends_when_the_workflow_is_cancelled(app: Taskflow) -> None:
    gates = Gates(1)

    @app.step()
    def gate() -> None:
        gates.wait_here(0)

    @app.workflow(name="s.cancelled")
    def cancelled() -> None:
        taskflow.write_stream("k", 1)
        gate()
        taskflow.write_stream("k", 2)

    thread = _run(cancelled, workflow_id="c")
    gates.entered(0)
    reader = Reader(app, "c", "k")
    assert reader.next() == 1
    assert app.cancel("c") == ["c"]
    assert reader.rest() == []
    gates.open(0)
    thread.join(LIMIT)
    # The cancelled workflow stopped at its next checkpoint: nothing more was appended.
    assert app.retrieve("c").status is Status.CANCELLED
    assert list(app.read_stream("c", "k")) == [1]


def test_each_read_starts_from_the_beginning(app: Taskflow) -> None:
    @app.workflow(name="s.again")
    def again() -> None:
        for i in range(5):
            taskflow.write_stream("k", i)

    again.apply(workflow_id="a")
    first = app.read_stream("a", "k")
    assert [next(first), next(first)] == [0, 1]
    assert list(app.read_stream("a", "k")) == [0, 1, 2, 3, 4]
    assert list(first) == [2, 3, 4]
    assert list(app.read_stream("a", "k")) == [0, 1, 2, 3, 4]


def test_a_read_times_out_waiting_for_the_next_value(app: Taskflow) -> None:
    gates = Gates(1)

    @app.step()
    def gate() -> None:
        gates.wait_here(0)

    @app.workflow(name="s.slow")
    def slow() -> None:
        taskflow.write_stream("k", "first")
        gate()

    thread = _run(slow, workflow_id="slow")
    gates.entered(0)
    values = app.read_stream("slow", "k", timeout=0.1)
    assert next(values) == "first"
    with pytest.raises(TimeoutError, match=r"'k' of workflow 'slow' within 0\.1s"):
        next(values)
    gates.open(0)
    thread.join(LIMIT)


# -- durability ------------------------------------------------------------------------------
def test_a_replay_after_a_crash_appends_nothing_twice(app: Taskflow) -> None:
    crash = {"armed": True}

    @app.workflow(name="s.replayed")
    def replayed() -> int:
        for i in range(3):
            taskflow.write_stream("k", i)
        if crash["armed"]:
            crash["armed"] = False
            raise SimulatedCrash
        taskflow.write_stream("k", 3)
        taskflow.close_stream("k")
        return 4

    with pytest.raises(SimulatedCrash):
        replayed.apply(workflow_id="r")
    assert app.retrieve("r").status is Status.PENDING
    [handle] = app.recover()
    assert handle.get() == 4
    assert list(app.read_stream("r", "k")) == [0, 1, 2, 3]
    names = [s.name for s in handle.steps()]
    assert names == ["taskflow.write_stream"] * 4 + ["taskflow.close_stream"]


def test_a_crash_after_close_replays_the_close_and_the_refused_write(app: Taskflow) -> None:
    crash = {"armed": True}

    @app.workflow(name="s.closed")
    def closed() -> str:
        taskflow.write_stream("k", "only")
        taskflow.close_stream("k")
        taskflow.close_stream("k")  # closing again is a no-op
        try:
            taskflow.write_stream("k", "late")
        except TaskflowError as exc:
            refused = str(exc)
        if crash["armed"]:
            crash["armed"] = False
            raise SimulatedCrash
        return refused

    with pytest.raises(SimulatedCrash):
        closed.apply(workflow_id="cl")
    [handle] = app.recover()
    assert handle.get() == (
        "cannot write to stream 'k' of workflow 'cl': it is closed "
        "(taskflow.close_stream was called for it)"
    )
    assert list(app.read_stream("cl", "k")) == ["only"]


def test_a_write_inside_a_step_is_a_plain_append_repeated_by_a_retry(app: Taskflow) -> None:
    attempts: list[int] = []

    @app.step(max_retries=1, retry_backoff=0.0, retry_jitter=False)
    def flaky() -> str:
        attempts.append(1)
        taskflow.write_stream("log", f"attempt {len(attempts)}")
        if len(attempts) == 1:
            raise OSError("transient")
        return "ok"

    @app.workflow(name="s.in_step")
    def in_step() -> str:
        result = flaky()
        taskflow.close_stream("log")
        return result

    assert in_step.apply(workflow_id="is").get() == "ok"
    assert list(app.read_stream("is", "log")) == ["attempt 1", "attempt 2"]
    assert [s.name for s in app.retrieve("is").steps()] == [
        flaky.name,
        "taskflow.close_stream",
    ]


def test_concurrent_appends_to_one_stream_each_get_their_own_offset(app: Taskflow) -> None:
    per_step = 25

    @app.step()
    def append(worker: int) -> None:
        for i in range(per_step):
            taskflow.write_stream("k", [worker, i])

    @app.workflow(name="s.concurrent")
    def concurrent() -> None:
        taskflow.gather([taskflow.start_step(append, w) for w in range(4)])
        taskflow.close_stream("k")

    concurrent.apply(workflow_id="cc")
    got = list(app.read_stream("cc", "k"))
    assert len(got) == 4 * per_step
    for w in range(4):
        assert [i for worker, i in got if worker == w] == list(range(per_step))


def test_the_broker_appends_once_per_step_and_nothing_after_the_close(app: Taskflow) -> None:
    """What a second executor running the same write step, or a write racing a close,
    finds in the database (replays in one process never reach the broker)."""

    @app.workflow(name="s.host")
    def host() -> None:
        pass

    host.apply(workflow_id="h")
    broker, now = app.broker, 1_700_000_000_000
    first = broker.write_stream("h", "k", '"x"', now, step=(10, "taskflow.write_stream"))
    assert (first.offset, first.closed, first.recorded) == (0, False, True)
    assert first.status is Status.SUCCESS
    again = broker.write_stream("h", "k", '"x"', now, step=(10, "taskflow.write_stream"))
    assert (again.offset, again.closed, again.recorded) == (None, False, False)
    plain = broker.write_stream("h", "k", '"y"', now)
    assert (plain.offset, plain.recorded) == (1, False)
    close = broker.write_stream("h", "k", None, now, step=(11, "taskflow.close_stream"))
    assert (close.offset, close.closed, close.recorded) == (2, False, True)
    refused = broker.write_stream("h", "k", '"z"', now, step=(12, "taskflow.write_stream"))
    assert (refused.offset, refused.closed, refused.recorded) == (None, True, False)
    reclose = broker.write_stream("h", "k", None, now, step=(13, "taskflow.close_stream"))
    assert (reclose.offset, reclose.closed, reclose.recorded) == (None, True, True)
    assert [s.step_id for s in app.retrieve("h").steps()] == [10, 11, 13]
    batch = broker.read_stream("h", "k", -1, 2)
    assert (batch.rows, batch.status) == ([(0, '"x"'), (1, '"y"')], Status.SUCCESS)
    assert broker.read_stream("h", "k", 1, 2).rows == [(2, None)]
    assert broker.read_stream("h", "k", 2, 2).rows == []
    nobody = broker.write_stream("nobody", "k", '"x"', now, step=(0, "taskflow.write_stream"))
    assert (nobody.offset, nobody.recorded, nobody.status) == (None, False, None)
    assert broker.read_stream("nobody", "k", -1, 2).status is None


# -- misuse ----------------------------------------------------------------------------------
def test_writing_to_a_closed_stream_raises(app: Taskflow) -> None:
    @app.workflow(name="s.after_close")
    def after_close() -> None:
        taskflow.close_stream("k")
        taskflow.write_stream("k", 1)

    handle = after_close.apply(workflow_id="ac")
    with pytest.raises(TaskflowError, match=r"cannot write to stream 'k' .* it is closed"):
        handle.get()
    assert list(app.read_stream("ac", "k")) == []


def test_writes_need_a_running_workflow(app: Taskflow) -> None:
    with pytest.raises(TaskflowError, match=r"write_stream\(\) was called outside a workflow"):
        taskflow.write_stream("k", 1)
    with pytest.raises(TaskflowError, match=r"close_stream\(\) was called outside a workflow"):
        taskflow.close_stream("k")


def test_reading_an_unknown_workflow_raises_at_once(app: Taskflow) -> None:
    with pytest.raises(UnknownWorkflowError, match="'nobody'"):
        app.read_stream("nobody", "k")


def test_bad_arguments_are_refused(app: Taskflow) -> None:
    @app.workflow(name="s.bad_key")
    def bad_key() -> None:
        taskflow.write_stream("", 1)

    @app.workflow(name="s.bad_value")
    def bad_value() -> None:
        taskflow.write_stream("k", object())

    with pytest.raises(ConfigurationError, match="key must be a non-empty string"):
        bad_key.apply(workflow_id="bk").get()
    with pytest.raises(SerializationError, match="stream 'k' of workflow 'bv'"):
        bad_value.apply(workflow_id="bv").get()
    assert list(app.read_stream("bv", "k")) == []
    with pytest.raises(ConfigurationError, match="key must be a non-empty string"):
        app.read_stream("bk", "")
    with pytest.raises(ConfigurationError, match="timeout must be a number"):
        app.read_stream("bk", "k", timeout=-1)


# -- real workers ----------------------------------------------------------------------------
@pytest.fixture
def stream_producer(database_url: str) -> Iterator[Taskflow]:
    """:mod:`streamapp` on the workers' database, for the test to start and read from."""
    app = streamapp.create_app(database_url)
    yield app
    app.close()


@pytest.mark.slow
def test_a_stream_is_read_once_in_order_across_a_killed_worker(
    database_url: str, stream_producer: Taskflow, workers: Workers
) -> None:
    total = 40
    app = "tests.integration.streamapp:app"
    produce = stream_producer._workflows["streams.produce"]
    first = workers.start(database_url, "-c", "1", app=app)
    handle = produce.delay(total, 0.05)
    got: list[Any] = []
    done = threading.Event()

    def read() -> None:
        for value in stream_producer.read_stream(handle.id, streamapp.KEY):
            got.append(value)
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: len(got) >= 10, "ten values read from the first worker")
    first.kill()  # SIGKILL, mid-stream
    assert len(got) < total, "the stream ended before the kill: the test proves nothing"
    workers.start(database_url, "-c", "1", app=app)
    assert done.wait(PROCESS_LIMIT), "the reader never reached the end of the stream"
    assert got == list(range(total))
    assert handle.get(timeout=PROCESS_LIMIT) == total
    assert list(stream_producer.read_stream(handle.id, streamapp.KEY)) == list(range(total))
    names = [s.name for s in handle.steps()]
    assert names.count("taskflow.write_stream") == total
    assert handle.info().attempts == 2
