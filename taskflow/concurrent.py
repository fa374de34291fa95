"""Concurrent steps: start steps that run side by side, then wait for all or the first.

``taskflow.start_step(fn, *args)`` numbers the step at once, in the workflow's own thread, and
runs its body in a thread of its own; ``taskflow.gather(futures)`` waits for all of them and
``taskflow.select(futures)`` for the first. Because step ids follow the order of the calls,
not the order in which the bodies finish, a replay finds every outcome where it was recorded;
``select`` records which future won, so a recovered workflow takes the same branch.

A workflow's outcome is written only once every step it started has finished and recorded
its own (:meth:`taskflow.workflow.WorkflowContext.wait_unfinished`): a step left running, such
as the loser of a ``select``, is never lost.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar

from taskflow.clock import now_ms
from taskflow.errors import (
    ConfigurationError,
    NonDeterministicWorkflowError,
    TaskflowError,
)
from taskflow.models import StepRow
from taskflow.serialization import decode, decode_error, encode
from taskflow.step import Step, _attempt
from taskflow.waiting import workflow_context
from taskflow.workflow import WorkflowContext, current_context

log = logging.getLogger("taskflow")

P = ParamSpec("P")
R = TypeVar("R")

SELECT_STEP = "taskflow.select"
"""Name of the step ``select`` records (its output is the index of the winner)."""

_POLL = 0.1
# Waits wake up this often (seconds) even when nothing happened: a soft time limit raised
# in the waiting thread lands only when it runs Python code, and a cancel found by another
# step's checkpoint must stop the wait for the rest.

_order = itertools.count()
# Finishing order across the process: ``select`` called after several futures finished
# still picks the one that finished first.


class StepFuture(Generic[R]):
    """A step started with :func:`start_step`: its outcome once it has finished.

    Created by :func:`start_step` only. A future of a step whose outcome was recorded by an
    earlier execution is finished from the start.
    """

    def __init__(self, ctx: WorkflowContext, step: Step[..., R], step_id: int) -> None:
        self._ctx = ctx
        self._step = step
        self._step_id = step_id
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._row: StepRow | None = None
        self._exc: BaseException | None = None
        self._finished_at = 0
        self._listeners: list[threading.Event] = []

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<StepFuture step {self._step_id} {self._step.name!r} {state}>"

    @property
    def step_id(self) -> int:
        """The step's id in its workflow (taken when :func:`start_step` was called)."""
        return self._step_id

    @property
    def name(self) -> str:
        """The step's registered name."""
        return self._step.name

    def done(self) -> bool:
        """True once the step has finished and its outcome is recorded (or could not be)."""
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> R:
        """Wait for the step and return its value, or raise the error it ended with (after
        its retries), as a direct call of the step would.

        Raises the built-in :class:`TimeoutError` if it has not finished within ``timeout``
        seconds (the step keeps running), and :class:`WorkflowCancelledError` if the
        workflow was cancelled while it ran.
        """
        if not _wait([self], until_all=True, timeout=timeout):
            raise TimeoutError(
                f"step {self._step_id} ({self._step.name!r}) of workflow "
                f"{self._ctx.workflow_id!r} did not finish within {timeout}s"
            )
        if self._exc is not None:
            raise self._exc
        row = self._row
        assert row is not None
        if _in_workflow_thread(self._ctx):
            self._ctx.failed_step = self._step_id if row.error is not None else None
        if row.error is not None:
            raise decode_error(row.error)
        return self._step.signature.decode_result(row.output or "null")  # type: ignore[no-any-return]

    # -- filled in by the step's thread ------------------------------------------------------
    def _finish(self, row: StepRow | None, exc: BaseException | None) -> None:
        with self._lock:
            self._row, self._exc = row, exc
            self._finished_at = next(_order)
            self._done.set()
            listeners = list(self._listeners)
        for listener in listeners:
            listener.set()

    def _listen(self, listener: threading.Event) -> None:
        with self._lock:
            self._listeners.append(listener)
            if self._done.is_set():
                listener.set()

    def _unlisten(self, listener: threading.Event) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _wait_quietly(self) -> None:
        # The end-of-workflow wait: returns early once the workflow is cancelled or a
        # checkpoint failed, since nothing more can be recorded then.
        ctx = self._ctx
        while not self._done.wait(_POLL):
            if ctx.cancelled or ctx.broken is not None:
                return


def start_step(fn: Step[P, R], /, *args: P.args, **kwargs: P.kwargs) -> StepFuture[R]:
    """Start step ``fn(*args, **kwargs)`` in its own thread and return its future at once.

    The step id is taken now, so ids follow the order of the ``start_step`` calls whatever
    order the bodies finish in. A step recorded by an earlier execution is not run again:
    its future is finished from the record. ``fn`` must be registered with ``@app.step``;
    its retry options and timeout apply as to a direct call. Only workflow code may call
    this: outside a workflow, or inside a step, it raises :class:`TaskflowError`.
    """
    ctx = workflow_context("taskflow.start_step()")
    step = _require_step(fn)
    step_id, recorded = ctx.take_step_id(step.name)
    future: StepFuture[R] = StepFuture(ctx, step, step_id)
    if recorded is not None:
        future._finish(recorded, None)
        return future
    ctx.check_deadline()
    body = contextvars.copy_context()
    _runner().submit(lambda: body.run(_run, ctx, step, step_id, args, kwargs, future))
    ctx.unfinished.append(future._wait_quietly)
    return future


def gather(futures: Sequence[StepFuture[Any]]) -> list[Any]:
    """Wait for every future and return their values, in the order given.

    If any step failed, this raises the error of the first failing future in list order,
    once all of them have finished (nothing is left running). Nothing is recorded for the
    ``gather`` itself: each step's own record is what a replay reads. Raises
    :class:`WorkflowCancelledError` as soon as the workflow is found cancelled.
    """
    ctx = workflow_context("taskflow.gather()")
    futures = _own_futures(ctx, futures, "taskflow.gather()")
    _wait(futures, until_all=True)
    _raise_interruption(futures)
    for future in futures:
        row = future._row
        assert row is not None
        if row.error is not None:
            ctx.failed_step = future.step_id
            raise decode_error(row.error)
    ctx.failed_step = None
    return [future.result() for future in futures]


def select(futures: Sequence[StepFuture[Any]]) -> StepFuture[Any]:
    """Wait for the first of ``futures`` to finish (with a value or an error) and return it.

    The choice is recorded as a step named ``"taskflow.select"`` whose output is the winner's
    index in the list, so a replay returns the same future, waiting for it if it has to run
    again, even when another one would finish first this time. The others keep running and
    are recorded as usual; the workflow does not finish before they have. Call
    ``.result()`` on the winner for its value or error.
    """
    ctx = workflow_context("taskflow.select()")
    futures = _own_futures(ctx, futures, "taskflow.select()")
    if not futures:
        raise TaskflowError(
            f"taskflow.select() was given no futures (workflow {ctx.workflow_id!r}): "
            "pass the futures of at least one taskflow.start_step() call"
        )
    step_id, recorded = ctx.take_step_id(SELECT_STEP)
    if recorded is not None:
        index = _recorded_index(ctx, step_id, recorded, len(futures))
        winner = futures[index]
        _wait([winner], until_all=True)
        _raise_interruption([winner])
        ctx.failed_step = None
        return winner
    ctx.check_deadline()
    started = now_ms(ctx.clock)
    _wait(futures, until_all=False)
    _raise_interruption([f for f in futures if f.done()])
    index = min(
        (i for i, f in enumerate(futures) if f.done()), key=lambda i: futures[i]._finished_at
    )
    row = ctx.checkpoint(
        StepRow(
            step_id=step_id,
            name=SELECT_STEP,
            output=encode(index),
            started_at=started,
            finished_at=now_ms(ctx.clock),
        )
    )
    # Another executor may have recorded this position first: its choice holds.
    if row.output != encode(index):
        index = _recorded_index(ctx, step_id, row, len(futures))
        _wait([futures[index]], until_all=True)
        _raise_interruption([futures[index]])
    ctx.failed_step = None
    return futures[index]


# -- helpers ----------------------------------------------------------------------------------
def _run(
    ctx: WorkflowContext,
    step: Step[..., Any],
    step_id: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    future: StepFuture[Any],
) -> None:
    """The step's thread: attempt it as a direct call would (retries included), checkpoint
    the outcome, hand it to the future."""
    try:
        row = ctx.checkpoint(_attempt(ctx, step, step_id, args, kwargs))
    except BaseException as exc:
        # A cancel found at the checkpoint, a database error (ctx.broken is set), or a
        # BaseException from the body: the workflow thread raises it when it waits.
        future._finish(None, exc)
        return
    future._finish(row, None)


def _wait(
    futures: Sequence[StepFuture[Any]], until_all: bool, timeout: float | None = None
) -> bool:
    """Wait until all (or, without ``until_all``, one) of ``futures`` finished, or one
    ended without a recorded outcome (a cancel, a failed checkpoint). False on timeout."""
    if not futures:
        return True
    # Real time, not the app clock: this waits for threads of this process.
    deadline = None if timeout is None else time.monotonic() + timeout
    woken = threading.Event()
    for future in futures:
        future._listen(woken)
    try:
        while True:
            # Cleared before looking, so a finish that happens after the look sets it again.
            woken.clear()
            done = [f for f in futures if f.done()]
            if any(f._exc is not None for f in done):
                return True
            if len(done) == len(futures) or (done and not until_all):
                return True
            wait = _POLL
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = min(wait, left)
            woken.wait(wait)
    finally:
        for future in futures:
            future._unlisten(woken)


def _raise_interruption(futures: Sequence[StepFuture[Any]]) -> None:
    """Raise the first cancel or checkpoint failure among finished ``futures``."""
    for future in futures:
        if future._exc is not None:
            raise future._exc


def _recorded_index(ctx: WorkflowContext, step_id: int, row: StepRow, count: int) -> int:
    index = decode(row.output or "null")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise NonDeterministicWorkflowError(
            f"workflow {ctx.workflow_id!r} ({ctx.name}): taskflow.select() at step {step_id} "
            f"was given {count} future(s), but its recorded choice is {row.output!r}: the code "
            "changed since it started; resume it on the app version it started on"
        )
    return index


def _require_step(fn: object) -> Step[..., Any]:
    if isinstance(fn, Step):
        return fn
    name = getattr(fn, "__qualname__", None) or repr(fn)
    raise ConfigurationError(
        f"taskflow.start_step() needs a step, got {name!r}: decorate the function with "
        "@app.step so its outcome is checkpointed"
    )


def _own_futures(
    ctx: WorkflowContext, futures: Sequence[StepFuture[Any]], what: str
) -> list[StepFuture[Any]]:
    items = list(futures)
    for item in items:
        if not isinstance(item, StepFuture):
            raise TaskflowError(
                f"{what} takes futures returned by taskflow.start_step(), got {item!r} "
                f"(workflow {ctx.workflow_id!r})"
            )
        if item._ctx is not ctx:
            raise TaskflowError(
                f"{what} was given {item!r}, started by another workflow execution "
                f"({item._ctx.workflow_id!r}), in workflow {ctx.workflow_id!r}"
            )
    return items


def _in_workflow_thread(ctx: WorkflowContext) -> bool:
    return current_context() is ctx and not ctx.in_step


# -- the threads that run step bodies ---------------------------------------------------------
class _Runner:
    """Daemon threads that run step bodies, one per running step, reused once idle.

    Reused rather than started per step because each thread keeps its own database
    connection (SQLite) for as long as it lives; daemon threads so that a step that never
    returns cannot keep a shutting-down process alive.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = 0
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._names = itertools.count(1)

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on an idle thread, or on a new one if none is idle."""
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._jobs.put(job)
        if spawn:
            threading.Thread(
                target=self._loop, name=f"taskflow-step-{next(self._names)}", daemon=True
            ).start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except BaseException:
                log.exception("a concurrent step's thread failed")
            with self._lock:
                self._idle += 1


class _Shared:
    """The process's one :class:`_Runner`, made on first use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runner: _Runner | None = None

    def get(self) -> _Runner:
        with self.lock:
            if self.runner is None:
                self.runner = _Runner()
            return self.runner

    def forget(self) -> None:
        # A forked child has none of its parent's threads (idle ones counted there do not
        # exist), and a lock another thread held at the fork would never be released.
        self.lock = threading.Lock()
        self.runner = None


_shared = _Shared()
_runner = _shared.get


os.register_at_fork(after_in_child=_shared.forget)


__all__ = ["SELECT_STEP", "StepFuture", "gather", "select", "start_step"]
