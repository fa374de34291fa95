"""Who may take over a running workflow, and executor identities that make it decidable.

An executor id made here reads ``host:pid:start`` (start = the process's start time from
/proc where available), so a process on the same host can tell a dead predecessor from a live
one even when the pid was reused. Executors on other hosts are judged by heartbeats, which
the worker maintains.
"""

from __future__ import annotations

import os
import socket


def _process_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            stat = fh.read()
    except OSError:
        return "0"
    # Field 22 (start time in clock ticks); the command name (field 2) may contain spaces,
    # so count from the closing parenthesis.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else "0"


def local_executor_id() -> str:
    """This process's executor id: ``host:pid:start``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead_local_executor(executor_id: str) -> bool:
    """True if ``executor_id`` names a process on this host that no longer runs.

    Ids from other hosts, or not made by :func:`local_executor_id`, are never judged dead here.
    """
    host, sep, rest = executor_id.partition(":")
    pid_text, sep2, start = rest.partition(":")
    if not (sep and sep2) or host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    if not _pid_alive(pid):
        return True
    return start != "0" and _process_start(pid) != start


__all__ = ["is_dead_local_executor", "local_executor_id"]
