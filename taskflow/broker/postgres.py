"""The Postgres broker: psycopg 3 with its connection pool, autocommit, hand-written SQL.

Every hot-path call is one statement in autocommit mode: one round trip and one commit.
psycopg prepares a statement server-side once it has run a few times, so the steady state
sends only parameters.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from taskflow.broker import postgres_flow, postgres_queue
from taskflow.broker.base import (
    DebounceResult,
    Listener,
    PruneResult,
    StepWrite,
    StreamWrite,
    VersionRow,
    WorkflowFilter,
    load_queries,
)
from taskflow.broker.external import postgres_connection
from taskflow.broker.flow_control import ClaimState, declaration_params
from taskflow.broker.listing import fork_params, listed_row, listing_query, version_rows
from taskflow.broker.migrations import (
    LATEST_VERSION,
    bootstrap_statements,
    migration_statements,
    pending,
)
from taskflow.broker.schedule_store import fire_params, schedule_arrays, sorted_schedules
from taskflow.broker.sql_broker import (
    DEFAULT_QUEUE,
    SQLBroker,
    debounce_params,
    debounce_until,
    event_params,
    park_params,
    send_params,
    step_params,
    take_params,
)
from taskflow.broker.url import DatabaseURL, validate_schema_name
from taskflow.broker.wakeups import WakeHub, events_key, inbox_key, streams_key
from taskflow.clock import SystemClock, now_ms
from taskflow.errors import DatabaseConnectionError, WorkflowDeduplicatedError
from taskflow.models import (
    ControlRef,
    Delivery,
    EnqueueResult,
    Finish,
    LimitedClaim,
    NewWorkflow,
    QueueTick,
    ScheduleRow,
    StepRow,
    Wait,
    WorkflowRow,
)
from taskflow.queues import Queue
from taskflow.status import Status

_STREAM_ATTEMPTS = 100
"""Runs of ``write_stream.sql`` before an offset taken each time by a concurrent append
gives up (each failed run means another append went through)."""


class PostgresBroker(SQLBroker):
    """A system database on PostgreSQL, in its own schema."""

    dialect = "postgresql"

    def __init__(
        self,
        url: DatabaseURL,
        schema: str = "taskflow",
        pool_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.schema = validate_schema_name(schema)
        self._conninfo = url.postgres_conninfo()
        self._pool_size = max(1, pool_size)
        self._connect_timeout = connect_timeout
        self._q = load_queries("postgres", self.schema)
        self.channel = postgres_queue.channel_name(self.schema)
        """The NOTIFY channel enqueues wake workers on: ``taskflow_<schema>``."""
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._pid = os.getpid()
        self._claim_lock = threading.Lock()
        self._claim_state = ClaimState()
        self._claim_conn: psycopg.Connection[Any] | None = None
        self._claim_pid = 0
        self.wake_channel = f"{self.channel}_wake"
        """The NOTIFY channel of message, event and stream writes (payload: a wake key)."""
        self._wakeups = WakeHub(
            poll_interval=1.0,
            listen=lambda: _WakeListener(self._connect, self.wake_channel),
        )

    # -- connections -----------------------------------------------------------------------
    def _connection_error(self, exc: Exception) -> DatabaseConnectionError:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        password = self.url.url.password
        if password:
            reason = reason.replace(str(password), "***")
        return DatabaseConnectionError(
            f"cannot connect to {self.url.where} ({self.url.redacted}): {reason}"
        )

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=max(1, int(self._connect_timeout)),
            )
        except psycopg.OperationalError as exc:
            raise self._connection_error(exc) from None

    def _get_pool(self) -> ConnectionPool:
        pool = self._pool
        if pool is not None and self._pid == os.getpid():
            return pool
        with self._lock:
            if self._pid != os.getpid():
                # A forked child must not touch the parent's sockets: start afresh.
                self._pool, self._pid = None, os.getpid()
            if self._pool is None:
                pool = ConnectionPool(
                    self._conninfo,
                    min_size=1,
                    max_size=self._pool_size,
                    kwargs={"autocommit": True},
                    timeout=self._connect_timeout,
                    open=False,
                    name="taskflow",
                )
                try:
                    pool.open(wait=True, timeout=self._connect_timeout)
                except PoolTimeout:
                    pool.close()
                    # Connect once directly to report why, not just that it timed out.
                    self._connect().close()
                    raise DatabaseConnectionError(
                        f"cannot connect to {self.url.where} ({self.url.redacted}): "
                        f"no connection within {self._connect_timeout}s"
                    ) from None
                self._pool = pool
            return self._pool

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._get_pool()
        try:
            conn = pool.getconn()
        except PoolTimeout:
            raise DatabaseConnectionError(
                f"no free connection to {self.url.where} within {self._connect_timeout}s "
                f"(all {self._pool_size} pooled connections busy or the server is unreachable; "
                "raise database_pool_size or database_connect_timeout)"
            ) from None
        try:
            yield conn
        finally:
            pool.putconn(conn)

    def _one(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        with self._conn() as conn:
            row: tuple[Any, ...] | None = conn.execute(self._q[query], params).fetchone()
            return row

    def _all(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            return conn.execute(self._q[query], params).fetchall()

    def _run(self, query: str, params: dict[str, Any]) -> None:
        with self._conn() as conn:
            conn.execute(self._q[query], params)

    def _list_param(self, values: Sequence[str]) -> object:
        return list(values)

    def close(self) -> None:
        """Close the pool and the claim connection (a no-op in a forked child that never
        opened them)."""
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None
        self._wakeups.close()
        with self._claim_lock:
            if self._claim_conn is not None and self._claim_pid == os.getpid():
                self._claim_conn.close()
            self._claim_conn = None

    # -- migrations ------------------------------------------------------------------------
    def schema_version(self) -> int:
        """Newest applied migration, 0 when the schema does not exist yet."""
        conn = self._connect()
        try:
            return self._version(conn)
        finally:
            conn.close()

    def _version(self, conn: psycopg.Connection[Any]) -> int:
        exists = conn.execute(
            "SELECT to_regclass(%s)", (f'"{self.schema}".schema_migrations',)
        ).fetchone()
        if exists is None or exists[0] is None:
            return 0
        row = conn.execute(self._q["migration_version"]).fetchone()
        return int(row[0]) if row else 0

    def migrate(self) -> int:
        """Apply pending migrations under an advisory lock scoped to this schema, so any
        number of processes starting together leave exactly one schema."""
        conn = self._connect()
        try:
            if self._version(conn) >= LATEST_VERSION:
                return 0
            lock_key = zlib.crc32(f"taskflow-migrate:{self.schema}".encode())
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
                for statement in bootstrap_statements("postgresql", self.schema):
                    conn.execute(statement.encode())
                todo = pending(self._version(conn))
                for migration in todo:
                    for statement in migration_statements(migration, "postgresql", self.schema):
                        conn.execute(statement.encode())
                    conn.execute(
                        self._q["record_migration"],
                        {
                            "version": migration.version,
                            "name": migration.name,
                            "now": now_ms(SystemClock()),
                        },
                    )
            return len(todo)
        finally:
            conn.close()

    # -- steps -----------------------------------------------------------------------------
    def record_step(self, workflow_id: str, step: StepRow) -> StepWrite:
        """One round trip: insert the outcome and read the workflow's status."""
        row = self._one("record_step", step_params(workflow_id, step))
        status = Status(row[1]) if row is not None and row[1] is not None else None
        if row is not None and row[0]:
            return StepWrite(inserted=True, status=status)
        return StepWrite(
            inserted=False, status=status, existing=self._get_step(workflow_id, step.step_id)
        )

    # -- queues ----------------------------------------------------------------------------
    def enqueue(self, news: Sequence[NewWorkflow], now: int) -> list[EnqueueResult]:
        """One statement for the whole batch (one round trip, one commit, one notification
        per queue); a second query only if some entry wrote nothing."""
        if not news:
            return []
        with self._conn() as conn, conn.cursor(row_factory=tuple_row) as cur:
            return postgres_queue.enqueue(cur, self._q, self.channel, news, now)

    def enqueue_on(
        self, connection: object, news: Sequence[NewWorkflow], now: int
    ) -> list[EnqueueResult]:
        """The same statement in the caller's transaction: its commit wakes workers."""
        raw = postgres_connection(connection)
        if not news:
            return []
        with raw.cursor(row_factory=tuple_row) as cur:
            return postgres_queue.enqueue(cur, self._q, self.channel, news, now)

    def claim(
        self,
        executor_id: str,
        queues: Sequence[str],
        app_version: str,
        limit: int,
        now: int,
        finishes: Sequence[Finish] = (),
    ) -> list[WorkflowRow]:
        """Finishes and claims in one statement, the claimed rows in claim order."""
        if limit <= 0 and not finishes:
            return []
        params = postgres_queue.claim_params(executor_id, queues, app_version, limit, now, finishes)
        with self._claim_lock:
            conn = self._claim_connection()
            try:
                rows = conn.execute(self._q["claim"], params).fetchall()
            except psycopg.OperationalError:
                # A broken session: reconnect on the next claim.
                self._claim_conn = None
                conn.close()
                raise
        return postgres_queue.claimed_rows(rows)

    def claim_limited(
        self, executor_id: str, queue: Queue, app_version: str, limit: int, now: int
    ) -> LimitedClaim:
        """Lock the queue (or its partitions), then count and claim: one transaction on the
        claim connection."""
        if limit <= 0:
            return LimitedClaim([])
        with self._claim_lock:
            conn = self._claim_connection()
            try:
                return postgres_flow.claim_limited(
                    conn,
                    self._q,
                    self.schema,
                    self._claim_state,
                    executor_id,
                    queue,
                    app_version,
                    limit,
                    now,
                )
            except psycopg.OperationalError:
                self._claim_conn = None
                conn.close()
                raise

    def declare_queues(self, specs: Sequence[Queue], app_version: str, now: int) -> None:
        """Record the version and its declarations in one statement."""
        rows = declaration_params(specs)
        params: dict[str, Any] = {"app_version": app_version, "now": now}
        for column, key in (
            ("name", "names"),
            ("concurrency", "concurrencies"),
            ("worker_concurrency", "worker_concurrencies"),
            ("rate_count", "rate_counts"),
            ("rate_per_ms", "rate_pers"),
            ("partitioned", "partitioneds"),
        ):
            params[key] = [r[column] for r in rows]
        self._run("declare_queues", params)

    def _claim_connection(self) -> psycopg.Connection[Any]:
        """The worker's claim connection. Its planner never uses bitmap or sequential scans:
        right after a burst of enqueues the table statistics still describe a small table,
        and Postgres would then sort the whole backlog on every claim (milliseconds) instead
        of walking ``ix_workflows_claim`` in order (microseconds)."""
        conn = self._claim_conn
        if conn is None or conn.closed or self._claim_pid != os.getpid():
            conn = self._connect()
            conn.execute("SET enable_bitmapscan = off")
            conn.execute("SET enable_seqscan = off")
            self._claim_conn, self._claim_pid = conn, os.getpid()
        return conn

    def tick(self, now: int) -> QueueTick:
        """Time out, promote, expire and report the next due time in one statement."""
        row = self._one("tick", {"now": now, "channel": self.channel})
        assert row is not None  # an aggregate always returns a row
        return QueueTick(
            promoted=int(row[0]), expired=int(row[1]), next_due=row[2], timed_out=int(row[4])
        )

    def listen(self) -> Listener:
        """A listener on its own connection, listening before this returns."""
        return postgres_queue.PostgresListener(self._connect, self.channel)

    # -- messages and events ---------------------------------------------------------------
    def _locked_one(
        self, ids: list[str], query: str, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """Lock ``ids`` (in order), then run ``query``: one transaction, two statements, so
        the query's snapshot includes whatever the holder of a lock committed."""
        with self._conn() as conn, conn.transaction():
            conn.execute(self._q["lock_workflows"], {"ids": ids})
            row: tuple[Any, ...] | None = conn.execute(self._q[query], params).fetchone()
            return row

    def park(
        self,
        workflow_id: str,
        executor_id: str,
        wait: Wait,
        now: int,
        default_queue: str = DEFAULT_QUEUE,
    ) -> Status | None:
        """Lock the workflow awaited (for an event) and this one, then park (see
        ``lock_workflows.sql``: a send or set_event racing the park cannot be missed)."""
        ids = [workflow_id]
        if wait.kind == "event" and wait.wait_on and wait.wait_on != workflow_id:
            ids.insert(0, wait.wait_on)
        row = self._locked_one(
            ids,
            "park",
            park_params(workflow_id, executor_id, wait, now, default_queue, self.channel),
        )
        return Status(row[0]) if row is not None else None

    @property
    def wakeups(self) -> WakeHub:
        """Woken by a LISTEN thread on :attr:`wake_channel`, polling each second besides."""
        return self._wakeups

    def send_message(
        self,
        destination_id: str,
        topic: str,
        message: str,
        now: int,
        send_key: str | None = None,
        sender: tuple[str, int, str] | None = None,
    ) -> Delivery:
        """One statement (see ``send_message.sql``)."""
        params = {
            **send_params(destination_id, topic, message, now, send_key, sender),
            "channel": self.channel,
            "wake_channel": self.wake_channel,
        }
        row = self._locked_one([destination_id], "send_message", params)
        assert row is not None  # scalar subqueries: always one row
        if row[1]:
            self._wakeups.publish(inbox_key(destination_id))
        return Delivery(
            found=bool(row[0]),
            inserted=bool(row[1]),
            sender_status=Status(row[4]) if row[4] is not None else None,
        )

    def take_message(
        self, workflow_id: str, topic: str, step_id: int, step_name: str, started_at: int, now: int
    ) -> tuple[str | None, Status | None]:
        """One statement (see ``take_message.sql``)."""
        params = take_params(workflow_id, topic, step_id, step_name, started_at, now)
        row = self._one("take_message", params)
        assert row is not None
        return row[0], Status(row[1]) if row[1] is not None else None

    def set_event(
        self,
        workflow_id: str,
        key: str,
        value: str,
        now: int,
        step: tuple[int, str] | None = None,
    ) -> Status | None:
        """One statement (see ``set_event.sql``)."""
        params = {
            **event_params(workflow_id, key, value, now, step),
            "channel": self.channel,
            "wake_channel": self.wake_channel,
        }
        row = self._locked_one([workflow_id], "set_event", params)
        assert row is not None
        self._wakeups.publish(events_key(workflow_id))
        return Status(row[0]) if row[0] is not None else None

    # -- streams ---------------------------------------------------------------------------
    def write_stream(
        self,
        workflow_id: str,
        key: str,
        value: str | None,
        now: int,
        step: tuple[int, str] | None = None,
    ) -> StreamWrite:
        """One statement (see ``write_stream.sql``), run again when a concurrent append
        took the same offset first."""
        params = {
            "workflow_id": workflow_id,
            "key": key,
            "value": value,
            "now": now,
            "step_id": step[0] if step else None,
            "step_name": step[1] if step else None,
            "wake_channel": self.wake_channel,
        }
        row: tuple[Any, ...] | None = None
        for attempt in range(1, _STREAM_ATTEMPTS + 1):
            try:
                row = self._one("write_stream", params)
                break
            except psycopg.errors.UniqueViolation:
                # Another append committed that offset meanwhile: the next run sees it.
                if attempt == _STREAM_ATTEMPTS:
                    raise
        assert row is not None  # scalar subqueries: always one row
        offset, closed, recorded, status, _ = row
        if offset is not None:
            self._wakeups.publish(streams_key(workflow_id))
        return StreamWrite(
            offset=offset,
            closed=bool(closed),
            recorded=bool(recorded),
            status=Status(status) if status is not None else None,
        )

    # -- control ---------------------------------------------------------------------------
    def cancel(self, ids: Sequence[str], now: int) -> list[str]:
        """The given workflows and their unfinished descendants, in one recursive statement."""
        if not ids:
            return []
        return [r[0] for r in self._all("cancel", {"ids": list(ids), "now": now})]

    def resume(
        self,
        ids: Sequence[str],
        now: int,
        queue: str | None = None,
        default_queue: str = DEFAULT_QUEUE,
    ) -> list[ControlRef]:
        """All or nothing, in one statement that also forgets the failed last steps and
        wakes the queues."""
        if not ids:
            return []
        params = {
            "ids": list(ids),
            "now": now,
            "queue": queue,
            "default_queue": default_queue,
            "channel": self.channel,
        }
        try:
            rows = self._all("resume", params)
        except psycopg.errors.UniqueViolation:
            raise WorkflowDeduplicatedError(
                f"cannot resume {', '.join(map(repr, ids))}: another workflow waiting or "
                "running in the target queue holds the dedup_id of one of them; nothing was "
                "resumed"
            ) from None
        return [ControlRef(id=r[0], name=r[1], status=Status(r[2]), changed=r[3]) for r in rows]

    def set_delay(self, workflow_id: str, delay_until: int, now: int) -> ControlRef | None:
        """One statement: the row as found, moved if it was DELAYED."""
        params = {
            "id": workflow_id,
            "delay_until": delay_until,
            "now": now,
            "channel": self.channel,
        }
        row = self._one("set_delay", params)
        if row is None:
            return None
        return ControlRef(id=row[0], name=row[1], status=Status(row[2]), changed=row[3])

    # -- retention -------------------------------------------------------------------------
    def prune(self, before_ms: int, batch: int, now: int) -> PruneResult:
        """One statement, so one short transaction (see ``prune.sql``)."""
        params = {"before": before_ms, "batch": max(1, batch), "now": now}
        row = self._one("prune", params)
        assert row is not None  # scalar subqueries: always one row
        return PruneResult(*(int(n) for n in row))

    # -- listing, forks and versions -------------------------------------------------------
    def list_workflows(
        self,
        where: WorkflowFilter,
        limit: int | None,
        offset: int = 0,
        newest_first: bool = True,
        load_inputs: bool = False,
        load_outputs: bool = False,
    ) -> list[WorkflowRow]:
        """One query, never prepared: planned with the actual values, so each filter gets
        its index (a generic plan knows neither the value nor the LIMIT)."""
        text, params = listing_query(
            self._q["list_workflows"],
            where,
            limit,
            offset,
            newest_first,
            load_inputs,
            load_outputs,
            self._list_param,
        )
        with self._conn() as conn:
            rows = conn.execute(text.encode(), params, prepare=False).fetchall()
        return [listed_row(r) for r in rows]

    def fork_workflow(
        self,
        workflow_id: str,
        new_id: str,
        start_step: int,
        now: int,
        *,
        queue: str,
        app_version: str | None = None,
        partition_key: str | None = None,
    ) -> EnqueueResult | None:
        """One statement (see ``fork_workflow.sql``)."""
        params = fork_params(
            workflow_id, new_id, start_step, now, queue, app_version, partition_key
        )
        params["channel"] = self.channel
        row = self._one("fork_workflow", params)
        assert row is not None  # scalar subqueries: always one row
        if row[0] is None:
            return None
        if row[1]:
            return EnqueueResult(id=new_id, created=True)
        return EnqueueResult(id=new_id, created=False, conflict="id", existing_id=new_id)

    def list_versions(self) -> list[VersionRow]:
        """Every recorded version, the latest first."""
        return version_rows(self._all("list_versions", {}))

    def set_latest_version(self, version: str, now: int) -> bool:
        """One statement."""
        return self._one("set_latest_version", {"version": version, "now": now}) is not None

    # -- debouncing --------------------------------------------------------------------------
    def debounce(
        self, new: NewWorkflow, key: str, delay_ms: int, max_wait_ms: int | None, now: int
    ) -> DebounceResult:
        """Two statements in one transaction: lock (or create) the key's row, then push its
        workflow back or start a new cycle, seeing whatever the debounce ahead committed."""
        params = debounce_params(new, key, delay_ms, max_wait_ms, now)
        params["channel"] = self.channel
        with self._conn() as conn, conn.transaction():
            locked = conn.execute(self._q["debounce_lock"], params).fetchone()
            assert locked is not None  # an upsert with RETURNING always returns its row
            current_id, first_at = locked
            params["current_id"] = current_id
            params["push_until"] = debounce_until(now, delay_ms, max_wait_ms, first_at)
            row = conn.execute(self._q["debounce"], params).fetchone()
        assert row is not None  # one row whatever was written
        workflow_id, pushed, written, status, delay_until = row[:5]
        return DebounceResult(
            workflow_id=workflow_id,
            created=bool(written) and not pushed,
            pushed=bool(pushed),
            status=Status(status) if status is not None else None,
            delay_until=delay_until,
        )

    # -- schedules ---------------------------------------------------------------------------
    def put_schedules(
        self, rows: Sequence[ScheduleRow], now: int, replace_source: str | None = None
    ) -> None:
        """One statement: the upsert and the deletion (see ``put_schedules.sql``)."""
        params = schedule_arrays(sorted_schedules(rows))
        params.update(now=now, replace_source=replace_source)
        self._run("put_schedules", params)

    def fire_schedule(
        self,
        name: str,
        expected_next: int,
        new_next: int,
        last_fired: int | None,
        news: Sequence[NewWorkflow],
        lease: tuple[str, int] | None,
        now: int,
    ) -> list[EnqueueResult] | None:
        """The guarded move of the schedule, then the enqueue, in one transaction (see
        ``fire_schedule.sql``); its commit sends the enqueue's notifications."""
        params = fire_params(name, expected_next, new_next, last_fired, lease, now)
        with (
            self._conn() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            if cur.execute(self._q["fire_schedule"], params).fetchone() is None:
                return None
            return postgres_queue.enqueue(cur, self._q, self.channel, news, now)


class _WakeListener:
    """LISTEN on the wake channel over a connection of its own, for :class:`WakeHub`."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], channel: str) -> None:
        self._conn = connect()
        try:
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except BaseException:
            self._conn.close()
            raise

    def notifies(self, timeout: float) -> Iterator[str]:
        """The payloads that arrive within ``timeout`` seconds."""
        for notify in self._conn.notifies(timeout=timeout):
            yield notify.payload

    def close(self) -> None:
        """End the LISTEN by closing the connection."""
        self._conn.close()


__all__ = ["PostgresBroker"]
