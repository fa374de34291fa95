"""The SQLite broker: the embedded default, one file in WAL mode.

Each thread has its own connection (sqlite3 connections are not shareable); a forked child
opens new ones. Writers from several processes wait on each other through ``busy_timeout``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec

from taskflow.broker import sqlite_flow, sqlite_queue
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
from taskflow.broker.external import sqlite_connection
from taskflow.broker.flow_control import ClaimState, declaration_params
from taskflow.broker.listing import fork_params, listed_row, listing_query, version_rows
from taskflow.broker.migrations import (
    LATEST_VERSION,
    bootstrap_statements,
    migration_statements,
    pending,
)
from taskflow.broker.schedule_store import fire_params, schedule_params, sorted_schedules
from taskflow.broker.sql_broker import (
    DEFAULT_QUEUE,
    SQLBroker,
    debounce_params,
    debounce_until,
    event_params,
    send_params,
    step_params,
    take_params,
)
from taskflow.broker.url import DatabaseURL
from taskflow.broker.wakeups import WakeHub, events_key, inbox_key, streams_key
from taskflow.clock import SystemClock, now_ms
from taskflow.errors import (
    ConfigurationError,
    DatabaseConnectionError,
    WorkflowDeduplicatedError,
)
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
    WorkflowRow,
)
from taskflow.queues import Queue
from taskflow.status import RESUMABLE, Status

_INHERITED: list[sqlite3.Connection] = []
"""Connections a forked child inherited; see ``SQLiteBroker._conn``."""

_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}


class SQLiteBroker(SQLBroker):
    """A system database in one SQLite file."""

    dialect = "sqlite"

    def __init__(
        self, url: DatabaseURL, synchronous: str = "FULL", busy_timeout: float = 30.0
    ) -> None:
        self.url = url
        self.path = url.sqlite_path
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"sqlite_synchronous must be one of {sorted(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        self._synchronous = synchronous.upper()
        self._busy_timeout = busy_timeout
        self._q = load_queries("sqlite")
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._claim_state = ClaimState()
        # No notifications across processes: waiters poll often (a read of an indexed row).
        self._wakeups = WakeHub(poll_interval=0.05)

    # -- connections -----------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise DatabaseConnectionError(
                f"cannot open {self.url.where}: folder {folder!r} does not exist"
            )
        try:
            # Each connection is used by the thread that opened it (see _conn); only close()
            # may run on another thread, which check_same_thread would refuse.
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            self._set_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except sqlite3.Error as exc:
            raise DatabaseConnectionError(f"cannot open {self.url.where}: {exc}") from None
        return conn

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        # Switching to WAL needs a moment with no other writer; the busy handler does not
        # cover it, so retry briefly when many processes open a new file together.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # A forked child must not use the parent's connections, nor close them: closing
            # one would checkpoint and remove the WAL the parent still uses. Keep them
            # referenced (never finalized) and open new ones.
            _INHERITED.extend(self._all_conns)
            self._local = threading.local()
            self._all_conns = []
            self._pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._all_conns.append(conn)
        return conn

    def _one(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        cur = self._conn().execute(self._q[query], params)
        rows = cur.fetchall()  # RETURNING statements commit only once fully read
        return tuple(rows[0]) if rows else None

    def _all(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._conn().execute(self._q[query], params).fetchall()]

    def _run(self, query: str, params: dict[str, Any]) -> None:
        self._conn().execute(self._q[query], params)

    def _list_param(self, values: Sequence[str]) -> object:
        return sqlite_queue.json_list(values)

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (``BEGIN IMMEDIATE``: one writer at a time, so
        what it reads stays true until it commits)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close every connection this process opened."""
        with self._lock:
            if self._pid == os.getpid():
                for conn in self._all_conns:
                    conn.close()
            else:
                _INHERITED.extend(self._all_conns)
            self._all_conns = []
            self._local = threading.local()

    # -- migrations ------------------------------------------------------------------------
    def schema_version(self) -> int:
        """Newest applied migration, 0 on an empty or missing file (which stays missing)."""
        if not os.path.exists(self.path):
            return 0
        conn = self._conn()
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if exists is None:
            return 0
        row = conn.execute(self._q["migration_version"]).fetchone()
        return int(row[0]) if row else 0

    def migrate(self) -> int:
        """Apply pending migrations inside ``BEGIN IMMEDIATE``, which admits one writer at a
        time, so processes starting together leave exactly one schema."""
        if self.schema_version() >= LATEST_VERSION:
            return 0
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in bootstrap_statements("sqlite", None):
                conn.execute(statement)
            todo = pending(self.schema_version())
            for migration in todo:
                for statement in migration_statements(migration, "sqlite", None):
                    conn.execute(statement)
                conn.execute(
                    self._q["record_migration"],
                    {
                        "version": migration.version,
                        "name": migration.name,
                        "now": now_ms(SystemClock()),
                    },
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(todo)

    # -- steps -----------------------------------------------------------------------------
    def record_step(self, workflow_id: str, step: StepRow) -> StepWrite:
        """Insert the outcome (one commit), then read the workflow's status."""
        conn = self._conn()
        inserted = conn.execute(self._q["record_step"], step_params(workflow_id, step)).rowcount
        status_row = conn.execute(self._q["get_status"], {"workflow_id": workflow_id}).fetchone()
        status = Status(status_row[0]) if status_row is not None else None
        if inserted:
            return StepWrite(inserted=True, status=status)
        return StepWrite(
            inserted=False, status=status, existing=self._get_step(workflow_id, step.step_id)
        )

    # -- queues ----------------------------------------------------------------------------
    def enqueue(self, news: Sequence[NewWorkflow], now: int) -> list[EnqueueResult]:
        """Every entry in one transaction (one commit)."""
        if not news:
            return []
        with self._immediate() as conn:
            return sqlite_queue.enqueue(conn, self._q, news, now)

    def enqueue_on(
        self, connection: object, news: Sequence[NewWorkflow], now: int
    ) -> list[EnqueueResult]:
        """In the caller's transaction (Python's sqlite3 opens one before the first INSERT
        unless the connection autocommits); never commits."""
        raw = sqlite_connection(connection)
        self._check_same_file(raw)
        if not news:
            return []
        return sqlite_queue.enqueue(raw, self._q, news, now)

    def _check_same_file(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("PRAGMA database_list").fetchone()
        theirs = row[2] if row is not None else ""
        if not theirs or not os.path.exists(theirs) or not os.path.samefile(theirs, self.path):
            raise ConfigurationError(
                f"connection= is open on SQLite file {theirs or '(in memory)'!r}, not on the "
                f"system database {self.path!r}"
            )

    def claim(
        self,
        executor_id: str,
        queues: Sequence[str],
        app_version: str,
        limit: int,
        now: int,
        finishes: Sequence[Finish] = (),
    ) -> list[WorkflowRow]:
        """Finishes and claims in one ``BEGIN IMMEDIATE`` transaction, in claim order."""
        if limit <= 0 and not finishes:
            return []
        with self._immediate() as conn:
            return sqlite_queue.claim(
                conn, self._q, executor_id, queues, app_version, limit, now, finishes
            )

    def claim_limited(
        self, executor_id: str, queue: Queue, app_version: str, limit: int, now: int
    ) -> LimitedClaim:
        """Count and claim in one ``BEGIN IMMEDIATE`` transaction."""
        if limit <= 0:
            return LimitedClaim([])
        with self._immediate() as conn:
            return sqlite_flow.claim_limited(
                conn, self._q, self._claim_state, executor_id, queue, app_version, limit, now
            )

    def declare_queues(self, specs: Sequence[Queue], app_version: str, now: int) -> None:
        """Record the version, then each declaration, in one transaction."""
        version, declare = sqlite_queue.statements(self._q["declare_queues"])
        base = {"app_version": app_version, "now": now}
        with self._immediate() as conn:
            conn.execute(version, base)
            conn.executemany(declare, [{**base, **row} for row in declaration_params(specs)])

    def tick(self, now: int) -> QueueTick:
        """Time out, promote, expire and report the next due time in one transaction."""
        with self._immediate() as conn:
            # cancel.sql with a deadline: the running workflows whose timeout passed, and
            # their unfinished descendants, before anything below is promoted or counted.
            late = {"ids": "[]", "deadline": now, "now": now}
            timed_out = len(conn.execute(self._q["cancel"], late).fetchall())
            done = sqlite_queue.tick(conn, self._q, now)
        return msgspec.structs.replace(done, timed_out=timed_out)

    # -- messages and events ---------------------------------------------------------------
    @property
    def wakeups(self) -> WakeHub:
        """Woken directly by writes of this process; other processes' writes are polled."""
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
        """One transaction (see ``send_message.sql``)."""
        exists, insert, record, wake, status = sqlite_queue.statements(self._q["send_message"])
        params = send_params(destination_id, topic, message, now, send_key, sender)
        with self._immediate() as conn:
            if not conn.execute(exists, params).fetchone()[0]:
                return Delivery(found=False, inserted=False)
            inserted = conn.execute(insert, params).rowcount > 0
            if sender is not None:
                conn.execute(record, params)
            if inserted:
                conn.execute(wake, params)
            row = conn.execute(status, params).fetchone() if sender is not None else None
        if inserted:
            self._wakeups.publish(inbox_key(destination_id))
        return Delivery(
            found=True,
            inserted=inserted,
            sender_status=Status(row[0]) if row is not None else None,
        )

    def take_message(
        self, workflow_id: str, topic: str, step_id: int, step_name: str, started_at: int, now: int
    ) -> tuple[str | None, Status | None]:
        """One transaction (see ``take_message.sql``)."""
        oldest, consume, record, status = sqlite_queue.statements(self._q["take_message"])
        params = take_params(workflow_id, topic, step_id, step_name, started_at, now)
        message: str | None = None
        with self._immediate() as conn:
            found = conn.execute(oldest, params).fetchone()
            if found is not None:
                params["seq"], message = found
                conn.execute(consume, params)
                conn.execute(record, {**params, "message": message})
            row = conn.execute(status, params).fetchone()
        return message, Status(row[0]) if row is not None else None

    def set_event(
        self,
        workflow_id: str,
        key: str,
        value: str,
        now: int,
        step: tuple[int, str] | None = None,
    ) -> Status | None:
        """One transaction (see ``set_event.sql``)."""
        upsert, record, wake, status = sqlite_queue.statements(self._q["set_event"])
        params = event_params(workflow_id, key, value, now, step)
        with self._immediate() as conn:
            conn.execute(upsert, params)
            if step is not None:
                conn.execute(record, params)
            conn.execute(wake, params)
            row = conn.execute(status, params).fetchone()
        self._wakeups.publish(events_key(workflow_id))
        return Status(row[0]) if row is not None else None

    def listen(self) -> Listener:
        """A listener polling the file's data version on its own connection."""
        return sqlite_queue.SQLiteListener(self._open())

    # -- streams ---------------------------------------------------------------------------
    def write_stream(
        self,
        workflow_id: str,
        key: str,
        value: str | None,
        now: int,
        step: tuple[int, str] | None = None,
    ) -> StreamWrite:
        """One ``BEGIN IMMEDIATE`` transaction (see ``write_stream.sql``)."""
        status_q, last_q, record_q, append_q = sqlite_queue.statements(self._q["write_stream"])
        params: dict[str, Any] = {
            "workflow_id": workflow_id,
            "key": key,
            "value": value,
            "now": now,
            "step_id": step[0] if step else None,
            "step_name": step[1] if step else None,
        }
        offset: int | None = None
        recorded = False
        with self._immediate() as conn:
            found = conn.execute(status_q, params).fetchone()
            if found is None:
                return StreamWrite(offset=None, closed=False, recorded=False, status=None)
            status = Status(found[0])
            last = conn.execute(last_q, params).fetchone()
            closed = bool(last[1]) if last is not None else False
            if closed and value is not None:
                return StreamWrite(offset=None, closed=True, recorded=False, status=status)
            params["offset"] = last[0] + 1 if last is not None else 0
            if step is not None:
                params["output"] = "null" if closed else str(params["offset"])
                recorded = conn.execute(record_q, params).rowcount > 0
            if not closed and (step is None or recorded):
                conn.execute(append_q, params)
                offset = params["offset"]
        if offset is not None:
            self._wakeups.publish(streams_key(workflow_id))
        return StreamWrite(offset=offset, closed=closed, recorded=recorded, status=status)

    # -- control ---------------------------------------------------------------------------
    def cancel(self, ids: Sequence[str], now: int) -> list[str]:
        """The given workflows and their unfinished descendants, in one recursive statement."""
        if not ids:
            return []
        params = {"ids": self._list_param(ids), "deadline": None, "now": now}
        return [r[0] for r in self._all("cancel", params)]

    def resume(
        self,
        ids: Sequence[str],
        now: int,
        queue: str | None = None,
        default_queue: str = DEFAULT_QUEUE,
    ) -> list[ControlRef]:
        """All or nothing in one ``BEGIN IMMEDIATE`` transaction: read, then (only if every
        id may be resumed) forget the failed last steps and requeue."""
        if not ids:
            return []
        find, forget, requeue = sqlite_queue.statements(self._q["resume"])
        listed = self._list_param(ids)
        params = {"ids": listed, "now": now, "queue": queue, "default_queue": default_queue}
        try:
            with self._immediate() as conn:
                found = conn.execute(find, {"ids": listed}).fetchall()
                ok = len(found) == len(ids) and all(Status(r[2]) in RESUMABLE for r in found)
                changed: set[str] = set()
                if ok:
                    conn.execute(forget, {"ids": listed})
                    changed = {r[0] for r in conn.execute(requeue, params).fetchall()}
        except sqlite3.IntegrityError:
            raise WorkflowDeduplicatedError(
                f"cannot resume {', '.join(map(repr, ids))}: another workflow waiting or "
                "running in the target queue holds the dedup_id of one of them; nothing was "
                "resumed"
            ) from None
        return [
            ControlRef(id=r[0], name=r[1], status=Status(r[2]), changed=r[0] in changed)
            for r in found
        ]

    def set_delay(self, workflow_id: str, delay_until: int, now: int) -> ControlRef | None:
        """Read and move in one ``BEGIN IMMEDIATE`` transaction."""
        find, move = sqlite_queue.statements(self._q["set_delay"])
        params = {"id": workflow_id, "delay_until": delay_until, "now": now}
        with self._immediate() as conn:
            row = conn.execute(find, {"id": workflow_id}).fetchone()
            if row is None:
                return None
            moved = bool(conn.execute(move, params).fetchall())
        return ControlRef(id=row[0], name=row[1], status=Status(row[2]), changed=moved)

    # -- retention -------------------------------------------------------------------------
    def prune(self, before_ms: int, batch: int, now: int) -> PruneResult:
        """One ``BEGIN IMMEDIATE`` transaction (see ``prune.sql``): pick, then delete."""
        pick, *deletes, debounces, starts = sqlite_queue.statements(self._q["prune"])
        params: dict[str, Any] = {"before": before_ms, "batch": max(1, batch), "now": now}
        with self._immediate() as conn:
            ids = [r[0] for r in conn.execute(pick, params).fetchall()]
            counts = [0] * len(deletes)
            if ids:
                listed = {"ids": sqlite_queue.json_list(ids)}
                counts = [conn.execute(d, listed).rowcount for d in deletes]
            if len(ids) < params["batch"]:
                counts.append(conn.execute(debounces, params).rowcount)
                counts.append(conn.execute(starts, params).rowcount)
            else:
                counts += [0, 0]
        # workflows, steps, events, streams, messages, debounces, queue_starts
        return PruneResult(*counts)

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
        """One query (see ``list_workflows.sql``)."""
        text, params = listing_query(
            self._q["list_workflows"],
            where,
            limit,
            offset,
            newest_first,
            load_inputs,
            load_outputs,
            self._list_param,
            no_limit=-1,
        )
        return [listed_row(tuple(r)) for r in self._conn().execute(text, params).fetchall()]

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
        """One ``BEGIN IMMEDIATE`` transaction (see ``fork_workflow.sql``)."""
        find, insert, steps, events, streams = sqlite_queue.statements(self._q["fork_workflow"])
        params = fork_params(
            workflow_id, new_id, start_step, now, queue, app_version, partition_key
        )
        with self._immediate() as conn:
            if conn.execute(find, {"id": workflow_id}).fetchone() is None:
                return None
            if conn.execute(insert, params).rowcount == 0:
                return EnqueueResult(id=new_id, created=False, conflict="id", existing_id=new_id)
            for statement in (steps, events, streams):
                conn.execute(statement, params)
        return EnqueueResult(id=new_id, created=True)

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
        """Lock (or create) the key's row, then push its workflow back or start a new cycle,
        in one ``BEGIN IMMEDIATE`` transaction (one writer at a time)."""
        push, insert, track = sqlite_queue.statements(self._q["debounce"])
        params = debounce_params(new, key, delay_ms, max_wait_ms, now)
        with self._immediate() as conn:
            locked = conn.execute(self._q["debounce_lock"], params).fetchall()
            current_id, first_at = locked[0]
            params["current_id"] = current_id
            params["push_until"] = debounce_until(now, delay_ms, max_wait_ms, first_at)
            pushed = conn.execute(push, params).fetchall()
            if pushed:
                written, was_pushed = pushed, True
            else:
                written, was_pushed = conn.execute(insert, params).fetchall(), False
                conn.execute(track, params)
        if not written:
            return DebounceResult(workflow_id=new.id, created=False, pushed=False)
        workflow_id, status, delay_until = written[0]
        return DebounceResult(
            workflow_id=workflow_id,
            created=not was_pushed,
            pushed=was_pushed,
            status=Status(status),
            delay_until=delay_until,
        )

    # -- schedules ---------------------------------------------------------------------------
    def put_schedules(
        self, rows: Sequence[ScheduleRow], now: int, replace_source: str | None = None
    ) -> None:
        """The upserts, then the deletion, in one ``BEGIN IMMEDIATE`` transaction (see
        ``put_schedules.sql``)."""
        upsert, remove = sqlite_queue.statements(self._q["put_schedules"])
        ordered = sorted_schedules(rows)
        with self._immediate() as conn:
            conn.executemany(upsert, [{**schedule_params(r), "now": now} for r in ordered])
            if replace_source is not None:
                names = self._list_param([r.name for r in ordered])
                conn.execute(remove, {"replace_source": replace_source, "names": names})

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
        """The guarded move of the schedule, then the enqueue, in one ``BEGIN IMMEDIATE``
        transaction (see ``fire_schedule.sql``)."""
        params = fire_params(name, expected_next, new_next, last_fired, lease, now)
        with self._immediate() as conn:
            if not conn.execute(self._q["fire_schedule"], params).fetchall():
                return None
            return sqlite_queue.enqueue(conn, self._q, news, now)


__all__ = ["SQLiteBroker"]
