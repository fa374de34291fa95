"""Quickstart: a three-step workflow is started, its process is killed after step 2, and a
new process resumes it from step 3 without repeating steps 1 and 2.

Run it with ``python examples/quickstart.py``. It uses the embedded SQLite default
(``taskflow.sqlite3`` in the working directory) unless ``TASKFLOW_DATABASE_URL`` is set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import taskflow
from taskflow import Taskflow

app = Taskflow("quickstart")


@app.step
def reserve_stock(order_id: int) -> str:
    """Step 1."""
    print(f"    step 1 runs: reserve stock for order {order_id}")
    return f"reservation-{order_id}"


@app.step
def charge_card(order_id: int) -> str:
    """Step 2."""
    print(f"    step 2 runs: charge the card for order {order_id}")
    return f"receipt-{order_id}"


@app.step
def ship(order_id: int, reservation: str) -> str:
    """Step 3."""
    print(f"    step 3 runs: ship order {order_id} using {reservation}")
    return f"parcel-{order_id}"


@app.workflow(name="quickstart.process_order")
def process_order(order_id: int) -> dict[str, str]:
    """Three checkpointed steps."""
    reservation = reserve_stock(order_id)
    receipt = charge_card(order_id)
    if os.environ.get("QUICKSTART_CRASH") == "1":
        print("    ...and the process is killed (SIGKILL) before step 3")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    parcel = ship(order_id, reservation)
    return {"reservation": reservation, "receipt": receipt, "parcel": parcel}


def main() -> None:
    """Start the workflow in a child process that gets killed, then resume it here."""
    if len(sys.argv) == 3 and sys.argv[1] == "start":
        process_order.apply(args=(42,), workflow_id=sys.argv[2])
        return
    workflow_id = f"order-42-{uuid.uuid4().hex[:8]}"
    print(f"taskflow {taskflow.__version__}, database {app.broker.url.redacted}\n")
    print(f"1. A child process starts workflow {workflow_id!r}:")
    sys.stdout.flush()
    env = {**os.environ, "QUICKSTART_CRASH": "1"}
    command = [sys.executable, __file__, "start", workflow_id]
    child = subprocess.run(command, env=env, check=False)  # noqa: S603 (this very script)
    print(f"   the child process died (exit code {child.returncode})\n")

    handle = app.retrieve(workflow_id)
    print(f"2. The database still holds the workflow: status {handle.status}")
    for step in handle.steps():
        print(f"    step {step.step_id + 1} ({step.name}): {step.status}")

    print("\n3. This process calls app.recover(), which resumes it from its last step:")
    recovered = [h for h in app.recover() if h.id == workflow_id]
    result = recovered[0].get(timeout=30) if recovered else handle.get(timeout=30)
    info = handle.info()
    print(f"\n4. Done: status {info.status}, attempts {info.attempts}, result {result}")
    print("   steps 1 and 2 ran once, before the crash; step 3 ran once, after it.")
    app.close()


if __name__ == "__main__":
    main()
