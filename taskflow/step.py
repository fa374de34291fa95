"""Steps: the checkpointed units of a workflow.

A step's outcome (its value, or the error it raised after its retries) is written before the
workflow moves on, and a replay returns it without running the step again. Outside a
workflow a step is a plain function call; inside another step it runs as part of that step.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from taskflow.clock import Clock, now_ms
from taskflow.errors import ConfigurationError
from taskflow.models import StepRow
from taskflow.retry import RetryPolicy
from taskflow.serialization import Signature, decode_error, encode, encode_error
from taskflow.workflow import WorkflowContext, current_context, in_step

P = ParamSpec("P")
R = TypeVar("R")


class Step(Generic[P, R]):
    """A function registered with ``@app.step``. Call it like the function."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str,
        policy: RetryPolicy,
        timeout: float | None,
        clock: Callable[[], Clock],
    ) -> None:
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ConfigurationError(f"step {name!r}: timeout must be > 0 seconds, got {timeout!r}")
        self.fn = fn
        self.name = name
        self.policy = policy.validate(f"step {name!r}")
        self.timeout = timeout
        self.signature = Signature(fn)
        self._clock = clock
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<taskflow step {self.name!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        ctx = current_context()
        if ctx is None or ctx.in_step:
            return self.fn(*args, **kwargs)
        return run_step(ctx, self, args, kwargs)

    def _invoke(self, step_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if self.timeout is None:
            with in_step(step_id):
                return self.fn(*args, **kwargs)
        return _call_with_timeout(self, step_id, args, kwargs)


def run_step(
    ctx: WorkflowContext, step: Step[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    """Run (or replay) one step of the running workflow."""
    step_id, recorded = ctx.take_step_id(step.name)
    if recorded is None:
        ctx.check_deadline()
        recorded = ctx.checkpoint(_attempt(ctx, step, step_id, args, kwargs))
    ctx.failed_step = step_id if recorded.error is not None else None
    if recorded.error is not None:
        raise decode_error(recorded.error)
    return step.signature.decode_result(recorded.output or "null")  # type: ignore[no-any-return]


def _attempt(
    ctx: WorkflowContext,
    step: Step[..., Any],
    step_id: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> StepRow:
    clock = ctx.clock
    started = now_ms(clock)
    retries = 0
    while True:
        try:
            value = step._invoke(step_id, args, kwargs)
            output = encode(value, f"result of step {step.name!r}")
        except Exception as exc:
            if step.policy.should_retry(exc, retries):
                retries += 1
                clock.sleep(step.policy.delay(retries))
                continue
            return StepRow(
                step_id=step_id,
                name=step.name,
                error=encode_error(exc),
                started_at=started,
                finished_at=now_ms(clock),
            )
        return StepRow(
            step_id=step_id,
            name=step.name,
            output=output,
            started_at=started,
            finished_at=now_ms(clock),
        )


def _call_with_timeout(
    step: Step[..., R], step_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    # Python cannot kill a thread: an overrunning step is abandoned (its thread finishes on
    # its own, its result discarded) and the workflow sees a TimeoutError.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with in_step(step_id):
                box["value"] = step.fn(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    ctx = contextvars.copy_context()
    thread = threading.Thread(
        target=ctx.run, args=(target,), name=f"taskflow-step-{step.name}", daemon=True
    )
    thread.start()
    thread.join(step.timeout)
    if thread.is_alive():
        raise TimeoutError(
            f"step {step.name!r} (step {step_id}) did not finish within its timeout of "
            f"{step.timeout}s and was abandoned"
        )
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


__all__ = ["Step", "run_step"]
