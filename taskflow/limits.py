"""Time limits for code running in a thread: when time is up, raise an exception in it.

This is how ``soft_time_limit`` (and ``time_limit`` in pools without a child process to end)
interrupts running code::

    with limit(60, SoftTimeLimitExceeded):
        run_the_task()

One :class:`TimeLimits` per process (:data:`time_limits`) keeps every armed deadline in a heap
watched by a single daemon thread, so a thousand running tasks cost one thread, not a
thousand timers. When a deadline passes while still armed, that thread raises the exception
in the target thread with CPython's ``PyThreadState_SetAsyncExc``.

What is guaranteed, and what is not:

* The exception is raised only in the target thread, and only while its limit is armed or
  while :meth:`TimeLimits.disarm` (the end of the ``with`` block) is running. After
  ``disarm`` returns, that limit's exception is never raised: if the deadline passed but the
  exception had not been raised yet, ``disarm`` cancels it. So a block that finished in time
  is never interrupted afterwards.
* It is raised when the thread next executes Python bytecode. A thread blocked in C code
  (``time.sleep``, a socket read, waiting on a lock, a long C-extension call) sees it only
  when that call returns, which may be much later, or after the block has ended, in which
  case it is cancelled as above and the block is not interrupted at all. Nothing can
  interrupt C code; that is what the hard ``time_limit`` (ending the process) is for.
* It can be raised anywhere in the block, including inside ``except`` and ``finally``
  clauses, and from the ``with`` statement itself when time runs out while the block is
  being left. The exception type is instantiated without arguments.
* ``limit()`` blocks of one thread nest: leaving a block also ends the limits of blocks
  opened inside it, in case an exception surfaced at the very start of an inner block's exit
  and skipped it. Tokens from :meth:`TimeLimits.arm` are independent of each other.
* A thread has one slot for a pending asynchronous exception. If two limits of the same
  thread (nested blocks) expire so close together that the first exception has not been
  raised when the second is set, only the second is raised.
* CPython only (``ctypes.pythonapi``). After ``os.fork()`` the child gets a fresh timer
  thread; it keeps the deadlines of the thread that forked (the only thread the child has)
  and drops the others.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import logging
import math
import os
import queue
import threading
import time
import weakref
from contextlib import AbstractContextManager, suppress
from types import TracebackType

from taskflow.errors import ConfigurationError

log = logging.getLogger("taskflow.limits")

# A private function pointer (CDLL.__getitem__ makes a new one), so setting argtypes cannot
# clash with other code that uses ctypes.pythonapi.PyThreadState_SetAsyncExc differently.
_set_async_exc = ctypes.pythonapi["PyThreadState_SetAsyncExc"]
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int


def _raise_in(thread_id: int, exc_type: type[BaseException]) -> int:
    return int(_set_async_exc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)))


def _clear_pending(thread_id: int) -> int:
    # An empty py_object is a NULL pointer: "clear the pending exception". Passing None would
    # pass Py_None, which CPython would later try to raise.
    return int(_set_async_exc(ctypes.c_ulong(thread_id), ctypes.py_object()))


_NEW = "new"  # created, not yet in the heap
_ARMED = "armed"  # in the heap, deadline not reached
_SENT = "sent"  # deadline reached, exception set in the thread
_DONE = "done"  # disarmed (or its thread was gone when it fired)


class Token:
    """An armed deadline, returned by :meth:`TimeLimits.arm`; pass it to
    :meth:`TimeLimits.disarm`."""

    __slots__ = ("_fired", "_scoped", "_state", "deadline", "exc_type", "seconds", "thread_id")

    def __init__(
        self, thread_id: int, seconds: float, deadline: float, exc_type: type[BaseException]
    ) -> None:
        self.thread_id = thread_id
        """The thread the exception is raised in (a ``threading.get_ident()`` value)."""
        self.seconds = seconds
        """The limit, in seconds."""
        self.deadline = deadline
        """When it expires, on the ``time.monotonic()`` clock."""
        self.exc_type = exc_type
        """What is raised when it expires."""
        self._state = _NEW
        self._fired = False
        self._scoped = False  # made by limit(): nests with the thread's other limit() blocks

    @property
    def fired(self) -> bool:
        """True once the deadline passed while the limit was armed."""
        return self._fired

    def __repr__(self) -> str:
        return (
            f"<time limit {self.seconds}s on thread {self.thread_id} "
            f"raising {self.exc_type.__name__}: {self._state}>"
        )


def _validate(thread_id: object, seconds: object, exc_type: object) -> None:
    if not isinstance(thread_id, int) or isinstance(thread_id, bool) or thread_id < 0:
        raise ConfigurationError(
            f"time limit: thread_id must be a threading.get_ident() value, got {thread_id!r}"
        )
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise ConfigurationError(
            f"time limit must be a finite number of seconds > 0, got {seconds!r}"
        )
    if not isinstance(exc_type, type) or not issubclass(exc_type, BaseException):
        raise ConfigurationError(
            f"time limit: exc_type must be an exception class, got {exc_type!r}"
        )


class TimeLimits:
    """Deadlines for threads of this process, enforced by one lazily started daemon thread.

    :meth:`arm` and :meth:`disarm` take the lock the timer thread holds while it fires, so a
    deadline either fires before ``disarm`` (which then cancels the exception if it is still
    pending) or never. See the module documentation for what is guaranteed.
    """

    def __init__(self) -> None:
        self._reset(os.getpid())
        _instances.add(self)

    def _reset(self, pid: int) -> None:
        self._pid = pid
        # Only C-level primitives are used from the limited threads: the exceptions this
        # module raises can surface at any bytecode boundary of the Python code those threads
        # run, and Python-level code such as threading.Condition's __enter__ or notify() could
        # then leave its lock held or its waiters inconsistent. A plain Lock's `with` and
        # SimpleQueue.put() run no bytecode.
        self._lock = threading.Lock()
        self._wakeup: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._heap: list[tuple[float, int, Token]] = []
        self._order = itertools.count()
        self._stale = 0  # heap entries disarmed before their deadline
        self._thread: threading.Thread | None = None
        # Per thread, the token whose exception was set last: only that one can still be in
        # the thread's (single) pending slot, so only its disarm may clear the slot.
        self._last_sent: dict[int, Token] = {}
        # Per thread, the open limit() blocks, outermost first.
        self._scopes: dict[int, list[Token]] = {}

    def arm(self, thread_id: int, seconds: float, exc_type: type[BaseException]) -> Token:
        """Raise ``exc_type`` in thread ``thread_id`` in ``seconds`` unless disarmed first.

        Every ``arm`` must be followed by a :meth:`disarm` of its token (in a ``finally``),
        or the exception may arrive after the code it was meant for has finished.
        """
        _validate(thread_id, seconds, exc_type)
        return self._arm(thread_id, seconds, exc_type, scoped=False)

    def _arm(
        self, thread_id: int, seconds: float, exc_type: type[BaseException], scoped: bool
    ) -> Token:
        token = Token(thread_id, float(seconds), time.monotonic() + seconds, exc_type)
        token._scoped = scoped
        try:
            with self._lock:
                if scoped:
                    self._scopes.setdefault(thread_id, []).append(token)
                token._state = _ARMED
                heapq.heappush(self._heap, (token.deadline, next(self._order), token))
                self._ensure_thread_locked()
                if self._heap[0][2] is token:
                    self._wakeup.put(None)
        except BaseException:
            # Interrupted (say, by an outer limit's exception) after scheduling: the caller
            # never receives the token, so it could never disarm it.
            self.disarm(token)
            raise
        return token

    def disarm(self, token: Token) -> bool:
        """End ``token``'s limit; return whether its deadline passed while it was armed.

        Afterwards its exception is never raised: if it fired but the thread has not raised
        it yet, the pending exception is cleared. Call it from the limited thread when the
        limited code ends (``limit()`` does); disarming twice is harmless.
        """
        if not isinstance(token, Token):
            raise ConfigurationError(f"disarm takes a Token from arm(), got {token!r}")
        with self._lock:
            ending = [token]
            scopes = self._scopes.get(token.thread_id, [])
            if token._scoped and any(open_ is token for open_ in scopes):
                # limit() blocks nest, so blocks opened inside this one have ended too; their
                # own exit can be skipped when an exception surfaces at its very start.
                index = next(i for i, open_ in enumerate(scopes) if open_ is token)
                ending = scopes[index:]
            # End first, forget after: if an exception surfaces half-way, a second disarm
            # still finds every token it must end.
            for each in ending:
                self._end_locked(each)
            if token._scoped and scopes:
                scopes[:] = [open_ for open_ in scopes if open_._state is not _DONE]
                if not scopes:
                    del self._scopes[token.thread_id]
            self._compact_locked()
            return token._fired

    def _end_locked(self, token: Token) -> None:
        state = token._state
        if state is _SENT:
            if self._last_sent.get(token.thread_id) is token:
                # Clear before changing state: if this exception surfaces first, the token
                # stays SENT and a second disarm still finds it consistent.
                _clear_pending(token.thread_id)
                del self._last_sent[token.thread_id]
        elif state is _ARMED:
            self._stale += 1
        token._state = _DONE

    def limit(
        self, seconds: float | None, exc_type: type[BaseException]
    ) -> AbstractContextManager[None]:
        """A ``with`` block limited to ``seconds`` in the current thread (None: no limit)."""
        if seconds is not None:
            _validate(0, seconds, exc_type)
        return _Limit(self, seconds, exc_type)

    @property
    def pending(self) -> int:
        """How many limits are armed and not yet expired (for tests and introspection)."""
        with self._lock:
            return sum(1 for _, _, token in self._heap if token._state is _ARMED)

    def _ensure_thread_locked(self) -> None:
        pid = os.getpid()
        if self._thread is None or self._pid != pid or not self._thread.is_alive():
            self._pid = pid
            thread = threading.Thread(
                target=self._run,
                args=(self._lock, self._wakeup),
                name="taskflow-time-limits",
                daemon=True,
            )
            thread.start()
            self._thread = thread

    def _compact_locked(self) -> None:
        # Long limits disarmed early would otherwise pile up until their deadlines pass.
        if self._stale > 64 and self._stale * 2 > len(self._heap):
            heap = [entry for entry in self._heap if entry[2]._state is _ARMED]
            heapq.heapify(heap)
            self._heap = heap  # one store: an interruption leaves the old heap or the new
            self._stale = 0

    def _run(self, lock: threading.Lock, wakeup: queue.SimpleQueue[None]) -> None:
        while True:
            with lock:
                heap = self._heap
                now = time.monotonic()
                while heap:
                    deadline, _, token = heap[0]
                    if token._state is not _ARMED:
                        heapq.heappop(heap)
                        self._stale = max(0, self._stale - 1)
                    elif deadline <= now:
                        heapq.heappop(heap)
                        try:
                            self._fire_locked(token)
                        except Exception:
                            log.exception("time limits: could not fire %r", token)
                    else:
                        break
                delay = heap[0][0] - now if heap else None
            with suppress(queue.Empty):
                wakeup.get(timeout=delay)

    def _fire_locked(self, token: Token) -> None:
        token._fired = True
        token._state = _SENT
        self._last_sent[token.thread_id] = token
        changed = _raise_in(token.thread_id, token.exc_type)
        if changed == 1:
            return
        del self._last_sent[token.thread_id]
        token._state = _DONE
        if changed == 0:
            log.debug("time limit expired for thread %d, which has ended", token.thread_id)
            return
        # CPython documents this as "you're in trouble": revert, as it says to.
        _clear_pending(token.thread_id)
        log.error(
            "time limit: PyThreadState_SetAsyncExc changed %d threads for id %d; reverted",
            changed,
            token.thread_id,
        )

    def _after_fork_in_child(self) -> None:
        me = threading.get_ident()
        heap = [entry for entry in self._heap if entry[2]._state is _ARMED]
        last = self._last_sent.get(me)
        scopes = self._scopes.get(me)
        self._reset(os.getpid())
        # Only the forking thread exists here; other threads' ids may be reused by new
        # threads of the child, so their deadlines must not fire.
        self._heap = [entry for entry in heap if entry[2].thread_id == me]
        heapq.heapify(self._heap)
        if last is not None:
            self._last_sent[me] = last
        if scopes:
            self._scopes[me] = scopes
        if self._heap:
            with self._lock:
                self._ensure_thread_locked()


class _Limit:
    """The context manager :func:`limit` returns."""

    def __init__(
        self, limits: TimeLimits, seconds: float | None, exc_type: type[BaseException]
    ) -> None:
        self._limits = limits
        self._seconds = seconds
        self._exc_type = exc_type
        self._token: Token | None = None

    def __enter__(self) -> None:
        if self._token is not None:
            raise ConfigurationError("a limit() block cannot be entered twice at once")
        if self._seconds is not None:
            self._token = self._limits._arm(
                threading.get_ident(), self._seconds, self._exc_type, scoped=True
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            self._limits.disarm(token)
        except BaseException:
            # The exception surfaced just before disarm took the lock: finish disarming so
            # nothing of this limit is left behind, then let the exception out of the block.
            self._limits.disarm(token)
            raise


_instances: weakref.WeakSet[TimeLimits] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for instance in list(_instances):
        instance._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    # The parent's lock may be held by its timer thread at the moment of fork(); the child
    # has no such thread, so it needs new locks, not just a getpid() check.
    os.register_at_fork(after_in_child=_after_fork_in_child)


time_limits = TimeLimits()
"""The process's :class:`TimeLimits`, used by :func:`limit`."""


def limit(seconds: float | None, exc_type: type[BaseException]) -> AbstractContextManager[None]:
    """Limit the ``with`` block to ``seconds`` in the current thread: past that, ``exc_type``
    (e.g. :class:`~taskflow.errors.SoftTimeLimitExceeded`) is raised inside it. None: no
    limit. See the module documentation for the guarantees."""
    return time_limits.limit(seconds, exc_type)


__all__ = ["TimeLimits", "Token", "limit", "time_limits"]
