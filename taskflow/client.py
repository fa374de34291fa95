"""``Client``: start, inspect and steer workflows from a process that does not import them.

A producer (a web app in another repository, a cron script) or an operator's tool talks to
the system database directly: it enqueues workflows by their registered name, waits for
their results, lists them, cancels, resumes and forks them, sends them messages and reads
their events and streams. Arguments are checked only for being storable (msgspec JSON);
results, events and stream values come back as JSON types, since the code that knows their
Python types lives in the app.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from taskflow import control, messaging, streams
from taskflow.broker import Broker, create_broker, parse_database_url
from taskflow.clock import Clock, SystemClock, now_ms
from taskflow.config import Config
from taskflow.debouncer import Debouncer
from taskflow.enqueue import build_rows, resolve, validate_options
from taskflow.errors import (
    ConfigurationError,
    TaskflowError,
    UnknownQueueError,
    UnknownWorkflowError,
)
from taskflow.handle import WorkflowHandle
from taskflow.management import ManagementMixin
from taskflow.queues import DEFAULT_QUEUE, Queue, validate_queue_name
from taskflow.schedules import Schedules
from taskflow.serialization import Signature
from taskflow.task import DedupPolicy, EnqueueOptions, pick_id

QUEUE_CACHE_SECONDS = 10.0
"""How long the client trusts the queue declarations it read (a miss reads them again at
once)."""


def _any_arguments(*args: Any, **kwargs: Any) -> None:
    """Stands for a workflow whose signature the client does not know."""


_ARGUMENTS = Signature(_any_arguments)
"""Encodes any JSON-storable arguments, naming the culprit when one is not."""


def _workflow_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(
            f"enqueue: give the registered name of a workflow (a non-empty string), got {name!r}"
        )
    return name


class Client(ManagementMixin):
    """A connection to a taskflow system database, for code that does not import the app.

    >>> client = Client("postgresql://localhost/shop")
    >>> handle = client.enqueue("orders.process", args=(42,), queue="emails")
    >>> handle.get(timeout=60)

    ``database_url`` defaults to ``$TASKFLOW_DATABASE_URL`` (``broker_url`` is an alias);
    other keyword arguments are settings of :class:`~taskflow.config.Config`
    (``database_schema``, ``database_pool_size``, ``database_connect_timeout``...). The
    database is reached, and migrated if needed, on first use. Safe to share between
    threads; ``close()`` (or a ``with`` block) releases its connections.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        broker_url: str | None = None,
        clock: Clock | None = None,
        **settings: Any,
    ) -> None:
        if database_url is not None and broker_url is not None and database_url != broker_url:
            raise ConfigurationError(
                "database_url and its alias broker_url were both given, with different values"
            )
        self.conf = Config(database_url=database_url or broker_url)
        self.conf.update(settings)
        self.clock: Clock = clock or SystemClock()
        self._broker: Broker | None = None
        self._lock = threading.Lock()
        self._queues: dict[str, Queue] = {}
        self._queues_read_at: float | None = None
        self._schedules: Schedules | None = None

    @classmethod
    def from_conf(cls, conf: Config, clock: Clock | None = None) -> Client:
        """A client on the database a configuration names, with its settings (a copy):
        ``Client.from_conf(app.conf)``."""
        client = cls(clock=clock)
        client.conf = dataclasses.replace(conf)
        return client

    def __repr__(self) -> str:
        try:
            where = parse_database_url(self.conf.resolved_database_url()).redacted
        except TaskflowError:
            where = "?"
        return f"<taskflow.Client {where}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def broker(self) -> Broker:
        """The system database, connected and migrated on first use."""
        broker = self._broker
        if broker is not None:
            return broker
        with self._lock:
            if self._broker is None:
                broker = create_broker(self.conf)
                try:
                    broker.migrate()
                except BaseException:
                    broker.close()
                    raise
                self._broker = broker
            return self._broker

    def close(self) -> None:
        """Release the database connections (the client reconnects if used again)."""
        with self._lock:
            if self._broker is not None:
                self._broker.close()
                self._broker = None

    @property
    def schedules(self) -> Schedules:
        """Schedules in the database, by workflow name: ``create``, ``apply``, ``get``,
        ``list``, ``pause``, ``resume``, ``delete``, ``backfill``, ``trigger`` (see
        docs/schedules.md). Without the app's registry, a workflow name is not checked: a
        schedule naming a workflow no worker knows fires workflows that end in ERROR."""
        if self._schedules is None:
            self._schedules = Schedules(lambda: self.broker, self.clock, handle=self._handle)
        return self._schedules

    # -- hooks of ManagementMixin ----------------------------------------------------------
    def _workflow_handle(self, workflow_id: str, name: str | None) -> WorkflowHandle[Any]:
        return self._handle(workflow_id)

    def _handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        return WorkflowHandle(
            self.broker,
            workflow_id,
            poll_interval=self.conf.result_poll_interval,
            clock=self.clock,
        )

    def _check_queue(self, name: str) -> Queue:
        """The declaration of queue ``name`` as workers recorded it (``default`` always
        exists), else :class:`UnknownQueueError`."""
        fresh = (
            self._queues_read_at is not None
            and self.clock.monotonic() - self._queues_read_at < QUEUE_CACHE_SECONDS
        )
        if name not in self._queues or not fresh:
            read = {n: r.queue for n, r in self.broker.queue_specs().items()}
            read.setdefault(DEFAULT_QUEUE, Queue(DEFAULT_QUEUE))
            self._queues, self._queues_read_at = read, self.clock.monotonic()
        spec = self._queues.get(name)
        if spec is not None:
            return spec
        known = ", ".join(sorted(self._queues))
        raise UnknownQueueError(
            f"queue {name!r} is not known to the database: no worker has declared or served "
            f"it yet (start a worker of the app that declares it); known queues: {known}"
        )

    # -- starting work ---------------------------------------------------------------------
    def enqueue(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        workflow_id: str | None = None,
        task_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        expires: float | datetime | None = None,
        dedup_id: str | None = None,
        dedup_policy: DedupPolicy = "reject",
        partition_key: str | None = None,
        timeout: float | None = None,
        app_version: str | None = None,
        user: str | None = None,
        connection: object | None = None,
    ) -> WorkflowHandle[Any]:
        """Enqueue the workflow registered as ``name`` with ``args`` and ``kwargs``, for a
        worker of the app, and return its handle (results come back as JSON types).

        The options are those of ``apply_async`` and mean the same: ``workflow_id`` (alias
        ``task_id``) is the idempotency key, ``countdown``/``eta`` delay the start,
        ``expires`` cancels it if not started by then, ``dedup_id``/``dedup_policy``,
        ``partition_key`` (required on a partitioned queue, refused elsewhere),
        ``timeout``, ``app_version``, ``user``, and ``connection`` to enqueue inside the
        caller's transaction. ``queue`` defaults to ``default`` (the client does not know
        the workflow's own queue) and must be known to the database: a worker declared or
        served it, else :class:`UnknownQueueError`. Arguments that msgspec JSON cannot
        encode raise :class:`SerializationError` before anything is written. The name is not
        checked: a worker that does not know it records the workflow as ERROR.
        """
        wf_name = _workflow_name(name)
        if not isinstance(args, list | tuple):
            raise ConfigurationError(
                f"enqueue of {wf_name!r}: args must be a tuple or list, got {args!r}"
            )
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise ConfigurationError(
                f"enqueue of {wf_name!r}: kwargs must be a mapping, got {kwargs!r}"
            )
        options = EnqueueOptions(
            workflow_id=pick_id(workflow_id, task_id),
            queue=queue,
            priority=priority,
            countdown=countdown,
            eta=eta,
            expires=expires,
            dedup_id=dedup_id,
            dedup_policy=dedup_policy,
            partition_key=partition_key,
            timeout=timeout,
            app_version=app_version,
            user=user,
        )
        target = validate_queue_name(queue) if queue is not None else DEFAULT_QUEUE
        validate_options(wf_name, options, self._check_queue(target))
        now = now_ms(self.clock)
        news = build_rows(
            wf_name,
            [(tuple(args), dict(kwargs or {}))],
            options,
            target,
            now,
            _ARGUMENTS.encode_inputs,
            ids=[options.workflow_id] if options.workflow_id else None,
        )
        broker = self.broker
        if connection is not None:
            results = broker.enqueue_on(connection, news, now)
        else:
            results = broker.enqueue(news, now)
        (done,) = resolve(broker, results, options, target, wf_name)
        return self._handle(done)

    def retrieve(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle on the workflow ``workflow_id`` (its result decodes as JSON types).
        Raises :class:`UnknownWorkflowError` when no workflow has that id."""
        (checked,) = control.workflow_ids([workflow_id], "retrieve")
        if self.broker.get_status(checked) is None:
            raise UnknownWorkflowError(f"no workflow with id {checked!r}")
        return self._handle(checked)

    AsyncResult = retrieve
    """Celery's name for :meth:`retrieve`."""

    def debouncer(
        self,
        name: str,
        timeout: float | timedelta | None = None,
        *,
        queue: str | None = None,
    ) -> Debouncer[..., Any]:
        """A :class:`Debouncer` of the workflow registered as ``name``:
        ``.debounce(key, delay, *args, **kwargs)`` starts it ``delay`` seconds after the last
        call for ``key``, with that call's arguments; ``timeout`` caps the wait from the
        first call. The workflows wait in ``queue`` (default ``default``), which must be
        known to the database and not partitioned. See ``docs/debouncing.md``."""
        wf_name = _workflow_name(name)
        target = validate_queue_name(queue) if queue is not None else DEFAULT_QUEUE

        def check() -> None:
            if self._check_queue(target).partitioned:
                raise ConfigurationError(
                    f"debouncer of workflow {wf_name!r}: queue {target!r} is partitioned, and "
                    "debounced workflows have no partition key; use another queue"
                )

        return Debouncer(
            wf_name,
            broker=lambda: self.broker,
            clock=self.clock,
            queue=target,
            encode_inputs=lambda args, kwargs: _ARGUMENTS.encode_inputs(
                args, kwargs, f"workflow {wf_name!r}"
            ),
            handle=self._handle,
            timeout=timeout,
            check=check,
        )

    # -- control ---------------------------------------------------------------------------
    def cancel(self, *ids: str) -> list[str]:
        """Cancel workflows, and all their unfinished descendants, in one statement.

        Every given workflow still ENQUEUED, DELAYED or PENDING becomes CANCELLED (a running
        one stops at its next step checkpoint), with its descendants. Unknown and finished
        ids are skipped: the answer lists the ids this call cancelled (the given ones first,
        in order, then the descendants), so ``set(ids) - set(result)`` were skipped.
        """
        return control.cancel(self.broker, self.clock, ids)

    def resume(self, *ids: str, queue: str | None = None) -> list[WorkflowHandle[Any]]:
        """Run CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflows again from their
        last completed step, through ``queue`` (else their own, else ``default``), and
        return their handles. All or nothing: :class:`UnknownWorkflowError` names unknown
        ids and :class:`WorkflowStatusError` those in another status; then nothing is
        resumed. ``queue`` must be known to the database and not partitioned."""
        if queue is not None:
            target = validate_queue_name(queue)
            if self._check_queue(target).partitioned:
                raise ConfigurationError(
                    f"resume: queue {target!r} is partitioned, and a resumed workflow has no "
                    "partition key there; resume it on its own queue instead"
                )
        refs = control.resume(self.broker, self.clock, ids, queue)
        return [self._handle(r.id) for r in refs]

    def set_delay(
        self, workflow_id: str, seconds: float | None = None, until: datetime | None = None
    ) -> None:
        """Move the start of a DELAYED workflow to ``seconds`` from now or to ``until`` (a
        datetime; naive means UTC); at or before now it becomes ENQUEUED at once. Give
        exactly one. Raises :class:`WorkflowStatusError` when it is not DELAYED and
        :class:`UnknownWorkflowError` when it does not exist."""
        control.set_delay(self.broker, self.clock, workflow_id, seconds, until)

    # -- messages, events and streams ------------------------------------------------------
    def send(
        self,
        workflow_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Send ``message`` (any value msgspec JSON encodes) to workflow ``workflow_id``, for
        its ``taskflow.recv(topic)``; it waits in the inbox until received. With
        ``idempotency_key`` a repeated call sends nothing more. Raises
        :class:`UnknownWorkflowError` when no workflow has that id."""
        messaging.send_outside(
            self.broker, self.clock, workflow_id, message, topic, idempotency_key
        )

    def get_event(
        self, workflow_id: str, key: str, timeout: float | None = messaging.DEFAULT_TIMEOUT
    ) -> Any:
        """The latest value workflow ``workflow_id`` published for event ``key``, as JSON
        types, waiting up to ``timeout`` seconds (None: without limit) for the first one;
        None when none is set by then or the workflow finished without setting it."""
        return messaging.get_event_outside(self.broker, self.clock, workflow_id, key, timeout)

    def read_stream(
        self, workflow_id: str, key: str, timeout: float | None = None
    ) -> Iterator[Any]:
        """The values workflow ``workflow_id`` writes to its stream ``key``, as JSON types,
        from the first one, waiting for new ones; ends when the stream is closed or the
        workflow has finished. ``timeout`` bounds each wait (the built-in
        :class:`TimeoutError`). Raises :class:`UnknownWorkflowError` for an unknown id."""
        return streams.read_stream(self.broker, self.clock, workflow_id, key, timeout)


__all__ = ["Client"]
