"""Messages between a prefork worker and its children: msgpack over a pipe, no pickle."""

from __future__ import annotations

import msgspec

from taskflow.models import Finish, WorkflowRow


class Run(msgspec.Struct, tag="run"):
    """Parent to child: run these claimed workflows."""

    rows: list[WorkflowRow]


class Stop(msgspec.Struct, tag="stop"):
    """Parent to child: finish what runs, then exit."""


class Done(msgspec.Struct, tag="done"):
    """Child to parent: a workflow ended here. ``finish`` is the outcome for the parent to
    write (None: already written, or nothing to write); ``failed`` means it could not run to
    an outcome (a database error mid-way) and must go back to its queue."""

    id: str
    finish: Finish | None = None
    failed: bool = False
    retire: str | None = None
    """Set on the child's last report before it retires (task or memory limit): why. Sent
    in the same message so the parent never hands it one more workflow."""


ToChild = Run | Stop
ToParent = Done

_encoder = msgspec.msgpack.Encoder()
_to_child = msgspec.msgpack.Decoder(ToChild)
_to_parent = msgspec.msgpack.Decoder(ToParent)


def encode(message: ToChild | ToParent) -> bytes:
    """Serialize one message."""
    return _encoder.encode(message)


def decode_for_child(data: bytes) -> ToChild:
    """Parse a message the parent sent."""
    message: ToChild = _to_child.decode(data)
    return message


def decode_for_parent(data: bytes) -> ToParent:
    """Parse a message a child sent."""
    message: ToParent = _to_parent.decode(data)
    return message


__all__ = [
    "Done",
    "Run",
    "Stop",
    "ToChild",
    "ToParent",
    "decode_for_child",
    "decode_for_parent",
    "encode",
]
