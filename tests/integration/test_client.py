"""``taskflow.Client`` from a process that never imports the app: it enqueues by name to real
``taskflow worker`` processes (:mod:`workerapp`), waits for results, lists, reads steps,
cancels, resumes, forks (onto another app version, run by a second worker of that version)
and manages versions. Side effects are counted in a file outside the database, so "ran
once" and "never ran again" are checked against what really ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from . import workerapp
from .helpers import PROCESS_LIMIT, Workers, blocked_pid, release, step_counts, wait_for

# Run with `python -c`: it imports taskflow and nothing else of this repository (the process
# runs in a folder of its own, without the repository on its path) and fails if any module of
# the tests, the app among them, got imported.
CLIENT_SCRIPT = r"""
import json, sys
from datetime import datetime, timedelta, timezone
from taskflow import Client, UnknownQueueError, UnknownWorkflowError

phase, url, *args = sys.argv[1:]
client = Client(url)
out = {}

def info(i):
    return {"id": i.id, "name": i.name, "status": i.status.value, "queue": i.queue,
            "app_version": i.app_version, "inputs": i.inputs, "output": i.output}

if phase == "run":
    h = client.enqueue("wa.three_steps", args=("c1",), workflow_id="three-1")
    out["result"] = h.get(timeout=60)
    again = client.enqueue("wa.three_steps", args=("other",), workflow_id="three-1")
    out["same_id"] = again.id
    out["on_a"] = client.enqueue("wa.one_step", ("on-a",), queue="a").get(timeout=60)
    try:
        client.enqueue("wa.one_step", ("x",), queue="nowhere")
    except UnknownQueueError as exc:
        out["unknown_queue"] = str(exc)
    out["listed"] = [info(i) for i in client.list_workflows(name="wa.three_steps",
                                                           load_inputs=True,
                                                           load_outputs=True)]
    out["newest"] = [i.name for i in client.list_workflows(limit=2)]
    hour = timedelta(hours=1)
    now = datetime.now(timezone.utc)
    out["recent"] = len(client.list_workflows(status="SUCCESS", start=now - hour, end=now + hour))
    out["future"] = len(client.list_workflows(start=now + hour))
    out["steps"] = [[s.step_id, s.name, s.status.value] for s in client.steps("three-1")]
    out["versions"] = [v.version for v in client.list_versions()]
elif phase == "start-slow":
    out["id"] = client.enqueue("wa.slow", args=("s",), workflow_id=args[0]).id
elif phase == "cancel":
    out["cancelled"] = client.cancel(*args)
    out["status"] = client.retrieve(args[0]).status.value
elif phase == "resume":
    [h] = client.resume(args[0])
    out["result"] = h.get(timeout=60)
    try:
        client.resume("no-such-workflow")
    except UnknownWorkflowError as exc:
        out["unknown"] = str(exc)
elif phase == "fork":
    source, step, version, new_id = args
    h = client.fork(source, int(step), app_version=version or None, new_id=new_id)
    out["id"] = h.id
    out["status"] = h.status.value
    out["copied"] = [s.name for s in client.steps(h.id)]
elif phase == "wait":
    h = client.retrieve(args[0])
    out["result"] = h.get(timeout=60)
    out["info"] = info(h.info())
elif phase == "versions":
    before = client.latest_version()
    client.set_latest_version(args[0])
    out["before"] = before.version if before else None
    out["after"] = client.latest_version().version
    out["all"] = [v.version for v in client.list_versions()]

client.close()
leaked = sorted(m for m in sys.modules if m == "tests" or m.startswith("tests."))
assert not leaked, leaked
print(json.dumps(out))
"""


def client_run(database_url: str, workdir: Path, phase: str, *args: str) -> dict[str, Any]:
    """Run one phase of :data:`CLIENT_SCRIPT` in a new Python process; return its JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
    env.pop("PYTHONPATH", None)
    folder = workdir / "client"
    folder.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", CLIENT_SCRIPT, phase, database_url, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_LIMIT,
        check=False,
    )
    assert proc.returncode == 0, f"client phase {phase} failed:\n{proc.stdout}\n{proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_client_without_the_app_runs_lists_steers_and_forks_work(
    database_url: str, workers: Workers, worker_dir: Path
) -> None:
    workers.start(database_url, "-c", "1", "-Q", "default,a", threads=2)

    # Enqueue by name, wait for the result, list, read the steps.
    ran = client_run(database_url, worker_dir, "run")
    assert ran["result"] == ["s1", "s2", "s3"]
    assert ran["same_id"] == "three-1"  # an existing id returns that workflow
    assert ran["on_a"] == "on-a"
    assert "'nowhere'" in ran["unknown_queue"] and "known queues" in ran["unknown_queue"]
    [listed] = ran["listed"]
    assert listed == {
        "id": "three-1",
        "name": workerapp.THREE_STEPS,
        "status": "SUCCESS",
        "queue": "default",
        "app_version": workerapp.APP_VERSION,
        "inputs": {"args": ["c1"], "kwargs": {}},
        "output": ["s1", "s2", "s3"],
    }
    assert ran["newest"] == [workerapp.ONE_STEP, workerapp.THREE_STEPS]
    assert (ran["recent"], ran["future"]) == (2, 0)
    assert ran["steps"] == [
        [0, "wa.s1", "SUCCESS"],
        [1, "wa.s2", "SUCCESS"],
        [2, "wa.s3", "SUCCESS"],
    ]
    assert ran["versions"] == [workerapp.APP_VERSION]  # the worker recorded its version
    counts = step_counts(worker_dir)
    assert [counts[("three-1", s)] for s in ("s1", "s2", "s3")] == [1, 1, 1]

    # Cancel a running workflow (an unknown id is skipped), then resume it.
    client_run(database_url, worker_dir, "start-slow", "slow-1")
    wait_for(lambda: blocked_pid(worker_dir, "slow-1") is not None, "slow-1 to block")
    cancelled = client_run(database_url, worker_dir, "cancel", "slow-1", "no-such-workflow")
    assert cancelled == {"cancelled": ["slow-1"], "status": "CANCELLED"}
    release(worker_dir, "slow-1")
    resumed = client_run(database_url, worker_dir, "resume", "slow-1")
    assert resumed["result"] == ["first", "wait", "last"]
    assert "'no-such-workflow'" in resumed["unknown"]
    counts = step_counts(worker_dir)
    assert [counts[("slow-1", s)] for s in ("first", "wait", "last")] == [1, 1, 1]

    # Fork onto the same version: only the steps from start_step run again.
    forked = client_run(database_url, worker_dir, "fork", "three-1", "1", "", "fork-same")
    assert forked == {"id": "fork-same", "status": forked["status"], "copied": ["wa.s1"]}
    done = client_run(database_url, worker_dir, "wait", "fork-same")
    assert done["result"] == ["s1", "s2", "s3"]
    assert done["info"]["app_version"] == workerapp.APP_VERSION

    # Fork onto a version no worker runs yet: a worker of that version picks it up.
    moved = client_run(database_url, worker_dir, "fork", "three-1", "2", "workerapp-2", "fork-v2")
    assert moved["copied"] == ["wa.s1", "wa.s2"]
    workers.start(database_url, "-c", "1", threads=1, app_version="workerapp-2", name="v2")
    done = client_run(database_url, worker_dir, "wait", "fork-v2")
    assert done["result"] == ["s1", "s2", "s3"]
    assert done["info"]["app_version"] == "workerapp-2"
    counts = step_counts(worker_dir)
    assert [counts[("fork-same", s)] for s in ("s1", "s2", "s3")] == [0, 1, 1]
    assert [counts[("fork-v2", s)] for s in ("s1", "s2", "s3")] == [0, 0, 1]
    assert [counts[("three-1", s)] for s in ("s1", "s2", "s3")] == [1, 1, 1]

    # The second worker recorded its version, now the latest; roll back to the first.
    versions = client_run(database_url, worker_dir, "versions", workerapp.APP_VERSION)
    assert versions == {
        "before": "workerapp-2",
        "after": workerapp.APP_VERSION,
        "all": [workerapp.APP_VERSION, "workerapp-2"],
    }
