"""Celery-compatible signals: hooks that workers and running tasks send at fixed moments.

::

    from taskflow import signals

    @signals.task_failure.connect
    def report(sender, task_id, exception, **kwargs):
        sentry.capture_exception(exception)

    @signals.task_success.connect(sender=process_order)
    def count(sender, result, **kwargs): ...

Receivers are called in the thread that sends the signal, in the order they were connected,
with ``signal=`` and ``sender=`` plus the signal's own keyword arguments. Receivers must
accept ``**kwargs``, so that arguments added to a signal later do not break them. An
exception raised by a receiver is logged (logger ``taskflow.signals``) and returned by
:meth:`Signal.send`, never raised, so one faulty receiver cannot break a worker.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, overload

from taskflow.errors import ConfigurationError

log = logging.getLogger("taskflow.signals")

Receiver = Callable[..., Any]
"""What can be connected: any callable accepting ``signal``, ``sender`` and ``**kwargs``."""

F = TypeVar("F", bound=Callable[..., Any])


class ReceiverInfo(NamedTuple):
    """One connection, as listed by :attr:`Signal.receivers`."""

    receiver: Receiver
    """The connected callable."""
    sender: object
    """The sender it listens to, or None for any sender."""
    dispatch_uid: object
    """The identifier it was connected with, or None."""
    weak: bool
    """Whether the signal holds it only by a weak reference."""


class _Entry:
    """A connection as stored: a strong or weak reference to the receiver."""

    __slots__ = ("dispatch_uid", "key", "ref", "sender", "weak")

    def __init__(
        self,
        key: tuple[object, object],
        ref: Callable[[], Receiver | None],
        sender: object,
        dispatch_uid: object,
        weak: bool,
    ) -> None:
        self.key = key
        self.ref = ref
        self.sender = sender
        self.dispatch_uid = dispatch_uid
        self.weak = weak

    def matches(self, sender: object) -> bool:
        if self.sender is None or self.sender is sender:
            return True
        # Celery users often connect by task name; names built at run time are equal to the
        # literal but not the same object, so strings compare by value.
        return isinstance(self.sender, str) and isinstance(sender, str) and self.sender == sender


def _receiver_id(receiver: Receiver) -> object:
    # A bound method is a new object at every attribute access; identify it by its parts so
    # `connect(obj.method)` twice is one connection and `disconnect(obj.method)` finds it.
    self_ = getattr(receiver, "__self__", None)
    func = getattr(receiver, "__func__", None)
    if self_ is not None and func is not None:
        return (id(self_), id(func))
    return id(receiver)


def _sender_id(sender: object) -> object:
    if sender is None or isinstance(sender, str):
        return sender
    return id(sender)


def _accepts_kwargs(receiver: Receiver) -> bool:
    try:
        params = inspect.signature(receiver).parameters.values()
    except (TypeError, ValueError):
        return True  # builtins and C callables: cannot tell, so trust the caller
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class Signal:
    """A named hook. Connect receivers to it; :meth:`send` calls them.

    Connecting and disconnecting are thread-safe, also while another thread sends.
    """

    def __init__(self, name: str, doc: str = "") -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"a signal needs a non-empty name, got {name!r}")
        self.name = name
        self.__doc__ = doc or f"The {name!r} signal."
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        # Set from weakref callbacks, which can run in any thread at any moment (even while
        # this thread holds the lock), so they only raise a flag; the next access prunes.
        self._has_dead = False

    def __repr__(self) -> str:
        return f"<Signal {self.name!r}: {len(self.receivers)} receivers>"

    @overload
    def connect(
        self,
        receiver: F,
        *,
        sender: object = None,
        dispatch_uid: object = None,
        weak: bool = False,
    ) -> F: ...

    @overload
    def connect(
        self,
        receiver: None = None,
        *,
        sender: object = None,
        dispatch_uid: object = None,
        weak: bool = False,
    ) -> Callable[[F], F]: ...

    def connect(
        self,
        receiver: F | None = None,
        *,
        sender: object = None,
        dispatch_uid: object = None,
        weak: bool = False,
    ) -> F | Callable[[F], F]:
        """Connect ``receiver``: ``sig.connect(fn)``, ``@sig.connect`` or
        ``@sig.connect(sender=task)``. Returns the receiver, so decorated functions stay
        usable.

        ``sender``: only signals sent by this object (compared by identity; strings by
        value) reach the receiver; None means every sender. The signal keeps a strong
        reference to the sender. ``dispatch_uid``: a unique id for the connection, so
        connecting again (e.g. a module imported twice) does not add a second one.
        Connecting the same receiver for the same sender twice is a no-op.

        ``weak=True`` holds the receiver by a weak reference, so connecting does not keep it
        alive. The default is False (Celery defaults to True) because a weakly held receiver
        defined inside a function, or a lambda, is garbage collected as soon as that function
        returns and then silently never runs.
        """
        if receiver is None:

            def decorator(fn: F) -> F:
                return self.connect(fn, sender=sender, dispatch_uid=dispatch_uid, weak=weak)

            return decorator

        if not callable(receiver):
            raise ConfigurationError(
                f"signal {self.name!r}: a receiver must be callable, got {receiver!r}"
            )
        if not _accepts_kwargs(receiver):
            raise ConfigurationError(
                f"signal {self.name!r}: receiver {receiver!r} must accept **kwargs "
                "(signals may gain arguments, and every receiver gets signal= and sender=)"
            )
        if not isinstance(weak, bool):
            raise ConfigurationError(f"signal {self.name!r}: weak must be a bool, got {weak!r}")
        key = (
            dispatch_uid if dispatch_uid is not None else _receiver_id(receiver),
            _sender_id(sender),
        )
        ref: Callable[[], Receiver | None]
        if weak:
            try:
                if inspect.ismethod(receiver):
                    ref = weakref.WeakMethod(receiver, self._on_receiver_collected)
                else:
                    ref = weakref.ref(receiver, self._on_receiver_collected)
            except TypeError as exc:
                raise ConfigurationError(
                    f"signal {self.name!r}: receiver {receiver!r} cannot be referenced "
                    f"weakly; connect it with weak=False"
                ) from exc
        else:
            strong = receiver

            def ref() -> Receiver | None:
                return strong

        with self._lock:
            self._prune_locked()
            if not any(entry.key == key for entry in self._entries):
                self._entries.append(_Entry(key, ref, sender, dispatch_uid, weak))
        return receiver

    def disconnect(
        self,
        receiver: Receiver | None = None,
        *,
        sender: object = None,
        dispatch_uid: object = None,
    ) -> bool:
        """Remove the connection of ``receiver`` (or the one made with ``dispatch_uid``) for
        ``sender``. Returns whether there was one."""
        if dispatch_uid is not None:
            ident = dispatch_uid
        elif receiver is not None:
            ident = _receiver_id(receiver)
        else:
            raise ConfigurationError(
                f"signal {self.name!r}: disconnect needs a receiver or a dispatch_uid"
            )
        key = (ident, _sender_id(sender))
        with self._lock:
            self._prune_locked()
            for index, entry in enumerate(self._entries):
                if entry.key == key:
                    del self._entries[index]
                    return True
        return False

    @property
    def receivers(self) -> list[ReceiverInfo]:
        """The live connections, in the order they are called."""
        with self._lock:
            self._prune_locked()
            entries = list(self._entries)
        found = []
        for entry in entries:
            receiver = entry.ref()
            if receiver is not None:
                found.append(ReceiverInfo(receiver, entry.sender, entry.dispatch_uid, entry.weak))
        return found

    def send(self, sender: object, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call every receiver connected for ``sender`` or for any sender, with
        ``signal=self, sender=sender, **named``.

        Returns ``[(receiver, result), ...]``; for a receiver that raised, the result is the
        exception, which is also logged with its traceback. Receivers connected or
        disconnected while sending take effect from the next send.
        """
        with self._lock:
            self._prune_locked()
            entries = [entry for entry in self._entries if entry.matches(sender)]
        responses: list[tuple[Receiver, Any]] = []
        for entry in entries:
            receiver = entry.ref()
            if receiver is None:
                continue
            try:
                result = receiver(signal=self, sender=sender, **named)
            except Exception as exc:
                # Celery's behaviour: a receiver's bug is reported, never propagated into
                # the worker or the task that happened to send the signal.
                log.exception(
                    "signal %r: receiver %r raised %s (sender %r)",
                    self.name,
                    receiver,
                    type(exc).__name__,
                    sender,
                )
                result = exc
            responses.append((receiver, result))
        return responses

    def _on_receiver_collected(self, _ref: object) -> None:
        self._has_dead = True

    def _prune_locked(self) -> None:
        if self._has_dead:
            self._has_dead = False
            self._entries = [entry for entry in self._entries if entry.ref() is not None]


worker_process_init = Signal(
    "worker_process_init",
    doc="Sent in each new worker child process (prefork pool) before it runs any task, with "
    "``sender=None``. The place to open per-process resources such as database connections.",
)

worker_process_shutdown = Signal(
    "worker_process_shutdown",
    doc="Sent in a worker child process as it exits, with ``sender=None``, ``pid=`` (the "
    "child's process id) and ``exitcode=``.",
)

worker_ready = Signal(
    "worker_ready",
    doc="Sent once the worker is ready to take work, with ``sender=`` the worker object (or None).",
)

worker_shutdown = Signal(
    "worker_shutdown",
    doc="Sent when the worker begins to shut down, with ``sender=`` the worker object (or None).",
)

task_prerun = Signal(
    "task_prerun",
    doc="Sent before a task (workflow) runs, in the process and thread that runs it, with "
    "``sender=`` the task, ``task_id=``, ``task=`` (the task again), ``args=`` and "
    "``kwargs=``.",
)

task_postrun = Signal(
    "task_postrun",
    doc="Sent after a task (workflow) ran, whatever the outcome, in the thread that ran it, "
    "with ``sender=`` the task, ``task_id=``, ``task=``, ``args=``, ``kwargs=``, ``retval=`` "
    "(its return value, or the exception it raised) and ``state=`` (the final status name, "
    'such as ``"SUCCESS"``, as Celery passes it).',
)

task_success = Signal(
    "task_success",
    doc="Sent when a task (workflow) succeeded, with ``sender=`` the task and ``result=`` "
    "its return value.",
)

task_failure = Signal(
    "task_failure",
    doc="Sent when a task (workflow) failed, with ``sender=`` the task, ``task_id=``, "
    "``exception=``, ``args=``, ``kwargs=``, ``traceback=`` and ``einfo=`` (None: Celery's "
    "ExceptionInfo has no equivalent here).",
)

task_retry = Signal(
    "task_retry",
    doc="Sent when a task (workflow) will be retried, with ``sender=`` the task, "
    "``request=`` (the task's request context), ``reason=`` (the exception or message that "
    "caused the retry) and ``einfo=`` (None).",
)

__all__ = [
    "Receiver",
    "ReceiverInfo",
    "Signal",
    "task_failure",
    "task_postrun",
    "task_prerun",
    "task_retry",
    "task_success",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
]
