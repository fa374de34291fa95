"""Workflows that the integration tests run in real child processes, kill with SIGKILL and
recover in other processes.

The app reads its database from ``$TASKFLOW_CRASH_DATABASE_URL`` and keeps everything that
happens outside the database in the folder ``$TASKFLOW_CRASH_DIR``:

- ``side_effects.log``: one line ``<label> <pid>`` per execution of a step (or workflow body),
  appended by the code itself, so the tests count executions without trusting the database;
- ``blocked-<label>``: written when the process reaches the boundary named by
  ``$TASKFLOW_CRASH_BLOCK_AT``; the process then blocks there (polling for a file that never
  appears) until the test kills it.

Run as a script it is the child process::

    python crashapp.py start <workflow name> <workflow id> <order>   # start, print the outcome
    python crashapp.py recover                                       # app.recover(), print them
    python crashapp.py race <workflow id> <order>                    # wait for "go", then start

Each command prints one JSON object on its last line of stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from taskflow import Taskflow, Workflow, WorkflowHandle

DATABASE_URL_ENV = "TASKFLOW_CRASH_DATABASE_URL"
WORKDIR_ENV = "TASKFLOW_CRASH_DIR"
BLOCK_AT_ENV = "TASKFLOW_CRASH_BLOCK_AT"
RACERS_ENV = "TASKFLOW_CRASH_RACERS"

SIDE_EFFECTS = "side_effects.log"
GO = "go"
NEVER = "never"
APP_VERSION = "crashapp-1"
BLOCK_LIMIT = 120.0
"""Seconds a blocked process waits before giving up on its own (a safety net: the test kills
it long before)."""

FIVE_STEPS = "crash.five_steps"
PARENT = "crash.parent"
CHILD = "crash.child"
RACE = "crash.race"

app = Taskflow("crashapp", database_url=os.environ.get(DATABASE_URL_ENV), app_version=APP_VERSION)


def workdir() -> Path:
    """The folder holding side effects and markers."""
    return Path(os.environ[WORKDIR_ENV])


def side_effect(label: str) -> None:
    """Record, outside the database, that ``label`` ran in this process."""
    with open(workdir() / SIDE_EFFECTS, "a", encoding="utf-8") as fh:
        fh.write(f"{label} {os.getpid()}\n")


def boundary(label: str) -> None:
    """Block here forever (until killed) if this is the boundary the test asked for."""
    if os.environ.get(BLOCK_AT_ENV) != label:
        return
    marker = workdir() / f"blocked-{label}"
    partial = marker.with_suffix(".partial")
    partial.write_text(str(os.getpid()), encoding="utf-8")
    partial.rename(marker)  # atomic: the test never reads a half-written marker
    never = workdir() / NEVER
    give_up = time.monotonic() + BLOCK_LIMIT
    while not never.exists():
        if time.monotonic() > give_up:
            os._exit(17)
        time.sleep(0.01)


# -- a five-step workflow ------------------------------------------------------------------
@app.step
def step1(order: int) -> int:
    """Step 1."""
    side_effect("step1")
    return order + 1


@app.step
def step2(value: int) -> int:
    """Step 2."""
    side_effect("step2")
    return value * 2


@app.step
def step3(value: int) -> int:
    """Step 3 (with a boundary inside it, after its side effect)."""
    side_effect("step3")
    boundary("inside-3")
    return value + 3


@app.step
def step4(value: int) -> int:
    """Step 4."""
    side_effect("step4")
    return value * 4


@app.step
def step5(value: int) -> int:
    """Step 5."""
    side_effect("step5")
    return value - 5


def expected_five_steps(order: int) -> dict[str, Any]:
    """What :func:`five_steps` returns, computed without taskflow."""
    a = order + 1
    b = a * 2
    c = b + 3
    d = c * 4
    e = d - 5
    return {"order": order, "values": [a, b, c, d, e]}


@app.workflow(name=FIVE_STEPS, max_recovery_attempts=1)
def five_steps(order: int) -> dict[str, Any]:
    """Five checkpointed steps with a boundary before, between and after them."""
    boundary("0")
    a = step1(order)
    boundary("1")
    b = step2(a)
    boundary("2")
    c = step3(b)
    boundary("3")
    d = step4(c)
    boundary("4")
    e = step5(d)
    boundary("5")
    return {"order": order, "values": [a, b, c, d, e]}


# -- a parent workflow calling a child workflow ------------------------------------------------
@app.step
def child_step1(value: int) -> int:
    """First step of the child."""
    side_effect("child_step1")
    return value + 10


@app.step
def child_step2(value: int) -> int:
    """Second step of the child."""
    side_effect("child_step2")
    return value * 10


@app.workflow(name=CHILD)
def child(value: int) -> int:
    """Two steps, with a boundary between them."""
    a = child_step1(value)
    boundary("child-1")
    return child_step2(a)


@app.step
def parent_step1(order: int) -> int:
    """First step of the parent."""
    side_effect("parent_step1")
    return order + 1


@app.step
def parent_step2(value: int) -> int:
    """Last step of the parent, after the child."""
    side_effect("parent_step2")
    return value + 7


@app.workflow(name=PARENT)
def parent(order: int) -> dict[str, int]:
    """A step, a child workflow, a step."""
    a = parent_step1(order)
    boundary("parent-1")
    c = child(a)
    boundary("parent-2")
    return {"first": a, "child": c, "last": parent_step2(c)}


def expected_parent(order: int) -> dict[str, int]:
    """What :func:`parent` returns, computed without taskflow."""
    a = order + 1
    c = (a + 10) * 10
    return {"first": a, "child": c, "last": c + 7}


# -- a workflow many processes start at once -------------------------------------------------------
@app.step
def race_step(order: int) -> dict[str, int]:
    """Wait until every racer is calling the workflow, then record who ran it."""
    side_effect("race_step")
    racers = int(os.environ.get(RACERS_ENV, "1"))
    give_up = time.monotonic() + 30.0
    while len(list(workdir().glob("calling-*"))) < racers and time.monotonic() < give_up:
        time.sleep(0.01)
    return {"order": order, "pid": os.getpid()}


@app.workflow(name=RACE)
def race(order: int) -> dict[str, int]:
    """One step; its body also leaves a side effect."""
    side_effect("race_body")
    return race_step(order)


WORKFLOWS: dict[str, Workflow[..., Any]] = {
    FIVE_STEPS: five_steps,
    PARENT: parent,
    CHILD: child,
    RACE: race,
}


# -- the child process -----------------------------------------------------------------------
def _describe(handle: WorkflowHandle[Any]) -> dict[str, Any]:
    outcome = handle.get(timeout=60, propagate=False)
    status = handle.status
    return {
        "id": handle.id,
        "status": status.value,
        "result": outcome if status == "SUCCESS" else None,
        "error": None if status == "SUCCESS" else f"{type(outcome).__name__}: {outcome}",
    }


def _wait_for_file(path: Path, limit: float) -> None:
    give_up = time.monotonic() + limit
    while not path.exists():
        if time.monotonic() > give_up:
            raise SystemExit(f"{path} did not appear within {limit}s")
        time.sleep(0.005)


def main(argv: list[str]) -> int:
    """Run one command (see the module docstring)."""
    if not os.environ.get(DATABASE_URL_ENV) or not os.environ.get(WORKDIR_ENV):
        print(f"set {DATABASE_URL_ENV} and {WORKDIR_ENV}", file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    out: dict[str, Any]
    if command == "start":
        name, workflow_id, order = args
        handle = WORKFLOWS[name].apply(args=(int(order),), workflow_id=workflow_id)
        out = _describe(handle)
    elif command == "recover":
        out = {"recovered": [_describe(h) for h in app.recover()]}
    elif command == "race":
        workflow_id, order = args
        _ = app.broker  # connect (and migrate) before the start line
        pid = os.getpid()
        (workdir() / f"ready-{pid}").write_text("", encoding="utf-8")
        _wait_for_file(workdir() / GO, 60.0)
        (workdir() / f"calling-{pid}").write_text("", encoding="utf-8")
        handle = race.apply(args=(int(order),), workflow_id=workflow_id)
        out = {"pid": pid, **_describe(handle)}
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    app.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
