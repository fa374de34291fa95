"""Patching: changing a workflow's code safely while workflows started on the old code are
still in flight.

``taskflow.patch(name)`` answers, at its position in the workflow's history, "did this
workflow get here on code that has the patch?". A workflow that reaches the position on
patched code records a *patch marker* there, a step row named ``taskflow.patch:<name>``, so
that its replays answer the same. A workflow whose history holds something else at that
position started on the old code and gets False, without the position being taken, so the
old branch replays against its own recorded steps.

``taskflow.deprecate_patch(name)`` is for the code that later drops the old branch: it steps
over the marker where one is recorded, and records nothing otherwise.

See docs/patching.md for the upgrade procedure and the exact rules.
"""

from __future__ import annotations

from taskflow.clock import now_ms
from taskflow.errors import TaskflowError
from taskflow.models import StepRow
from taskflow.workflow import WorkflowContext, current_context, forbid_in_step

PATCH_MARKER_PREFIX = "taskflow.patch:"
"""Step names that start with this are patch markers; the patch name follows it."""

_MARKER_OUTPUT = "null"
# A marker has no value, but a recorded step holds exactly one of output / error: JSON null.


def marker_name(name: str) -> str:
    """The step name under which the marker of patch ``name`` is recorded."""
    return PATCH_MARKER_PREFIX + name


def _context(function: str, name: object) -> WorkflowContext:
    if not isinstance(name, str) or not name:
        raise TaskflowError(f"{function} needs a non-empty str patch name, got {name!r}")
    ctx = current_context()
    if ctx is None:
        raise TaskflowError(
            f"{function} was called outside a workflow: a patch marks a position in a "
            "workflow's history, so call it from workflow code"
        )
    forbid_in_step(function)
    return ctx


def _recorded_beyond(ctx: WorkflowContext) -> bool:
    # An empty position with steps recorded after it was passed by the old code (a concurrent
    # step there had not finished): that workflow did get this far, unpatched.
    position = ctx.next_step
    return any(step_id > position for step_id in ctx.recorded_history())


def patch(name: str) -> bool:
    """True if this workflow runs the patched code at this point, False if it started on code
    without the patch and must replay the old branch.

    - Nothing recorded at this position (a new workflow, or one that had not got this far):
      record the marker of ``name`` here and return True.
    - The marker of ``name`` recorded here: take the position and return True.
    - Anything else recorded here (an old step, or another patch's marker): return False and
      leave the position for the code that follows.

    Call it from workflow code only: outside a workflow or inside a step it raises
    :class:`TaskflowError`.
    """
    ctx = _context("taskflow.patch()", name)
    marker = marker_name(name)
    here = ctx.peek_step()
    if here is not None:
        if here.name != marker:
            return False
        ctx.take_step_id(marker)
        ctx.failed_step = None
        return True
    if _recorded_beyond(ctx):
        return False
    step_id, _ = ctx.take_step_id(marker)
    ctx.check_deadline()
    now = now_ms(ctx.clock)
    stored = ctx.checkpoint(
        StepRow(
            step_id=step_id,
            name=marker,
            output=_MARKER_OUTPUT,
            started_at=now,
            finished_at=now,
        )
    )
    ctx.failed_step = None
    if stored.name == marker:
        return True
    # Another execution of this workflow (old code, recovering it at the same time) recorded
    # its own step here first. Its history wins: give the position back so that the old
    # branch replays that step.
    ctx.recorded[step_id] = stored
    ctx.next_step = step_id
    return False


def deprecate_patch(name: str) -> bool:
    """Always True: step over the marker of ``name`` if this workflow recorded one at this
    position, and record nothing otherwise.

    Use it once no workflow that took the old branch of ``patch(name)`` is still in flight:
    it replays workflows that recorded the marker, and new workflows record none, so the next
    version can drop the call altogether once those have finished.

    Call it from workflow code only: outside a workflow or inside a step it raises
    :class:`TaskflowError`.
    """
    ctx = _context("taskflow.deprecate_patch()", name)
    marker = marker_name(name)
    here = ctx.peek_step()
    if here is not None and here.name == marker:
        ctx.take_step_id(marker)
        ctx.failed_step = None
    return True


__all__ = ["PATCH_MARKER_PREFIX", "deprecate_patch", "marker_name", "patch"]
