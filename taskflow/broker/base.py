"""The one interface every system database backend implements.

The broker stores opaque payloads (JSON text) and never sees a Python callable, so a producer
that never imports the task code can use it, and one conformance suite tests every backend.
Timestamps are passed in by the caller (milliseconds since the epoch), which keeps the clock
injectable.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from importlib import resources

import msgspec

from taskflow.broker.url import DatabaseURL
from taskflow.broker.wakeups import WakeHub
from taskflow.models import (
    BeatLease,
    ControlRef,
    DelayedRef,
    Delivery,
    EnqueueResult,
    ExecutorBeat,
    Finish,
    LimitedClaim,
    NewWorkflow,
    OrphanRef,
    QueueDepth,
    QueueTick,
    RunningRef,
    ScheduleRow,
    StartResult,
    StepRow,
    Wait,
    WorkflowRow,
)
from taskflow.queues import Queue, QueueRecord
from taskflow.status import Status


class StepWrite(msgspec.Struct, frozen=True):
    """What checkpointing a step found: whether this call recorded it (False: another
    executor did first, and ``existing`` holds that outcome) and the workflow's status."""

    inserted: bool
    status: Status | None
    existing: StepRow | None = None


class PendingRef(msgspec.Struct, frozen=True):
    """A running workflow owned by another executor."""

    id: str
    name: str
    executor_id: str
    parent_id: str | None


def load_queries(dialect: str, schema: str | None = None) -> dict[str, str]:
    """Every named query of a dialect, from ``sql/<dialect>/<name>.sql``."""
    folder = resources.files("taskflow.broker") / "sql" / dialect
    queries: dict[str, str] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            text = entry.read_text(encoding="utf-8")
            if schema is not None:
                # The schema name was validated as a plain identifier; quote it anyway.
                text = text.replace("{schema}", f'"{schema}"')
            queries[entry.name[:-4]] = text
    return queries


class Listener(abc.ABC):
    """Wakes a worker when work is enqueued (LISTEN/NOTIFY on Postgres). A notification may be
    lost (PgBouncer in transaction mode), so callers also poll; ``wait`` only shortens the
    wait."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if a notification (or, on SQLite, a change of
        the database by another connection) arrived. Drains every pending notification."""

    @abc.abstractmethod
    def fileno(self) -> int | None:
        """A descriptor that becomes readable when ``wait`` would return True at once, for
        ``select``; None if the dialect has none (then poll ``wait``)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop listening and release the connection."""


class Broker(abc.ABC):
    """A system database. Safe to share between threads of one process; after ``fork()`` a
    child process reopens its connections on first use."""

    dialect: str
    url: DatabaseURL

    # -- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> int:
        """Bring the schema to the newest version; return the number of migrations applied.
        Safe when many processes call it at once."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The newest migration applied (0 on an empty database)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection."""

    # -- workflows -------------------------------------------------------------------------
    @abc.abstractmethod
    def start_workflow(self, new: NewWorkflow, now: int) -> StartResult:
        """Insert a workflow row unless its id exists; then return the existing row."""

    @abc.abstractmethod
    def get_workflow(self, workflow_id: str) -> WorkflowRow | None:
        """The stored workflow, or None."""

    @abc.abstractmethod
    def get_status(self, workflow_id: str) -> Status | None:
        """Only the status of a workflow (cheap, for polling), or None."""

    @abc.abstractmethod
    def finish_workflow(
        self,
        workflow_id: str,
        status: Status,
        output: str | None,
        error: str | None,
        now: int,
    ) -> bool:
        """Record a final outcome if the workflow is still PENDING; True if it was recorded."""

    @abc.abstractmethod
    def set_status(
        self,
        workflow_id: str,
        status: Status,
        expected: Status,
        now: int,
        error: str | None = None,
    ) -> bool:
        """Move a workflow from ``expected`` to ``status``; True if it was in ``expected``."""

    # -- steps -----------------------------------------------------------------------------
    @abc.abstractmethod
    def record_step(self, workflow_id: str, step: StepRow) -> StepWrite:
        """Checkpoint a step outcome (one round trip, one commit) and report the workflow's
        status, so a cancelled workflow stops at its next step."""

    @abc.abstractmethod
    def forget_step(self, workflow_id: str, step_id: int) -> bool:
        """Delete a step's recorded *error* (never a success), so that a retry of the
        workflow runs that step again. True if one was deleted."""

    @abc.abstractmethod
    def load_steps(self, workflow_id: str) -> list[StepRow]:
        """Every recorded step of a workflow, in order."""

    # -- recovery --------------------------------------------------------------------------
    @abc.abstractmethod
    def list_pending(self, app_version: str) -> list[PendingRef]:
        """PENDING workflows of ``app_version`` with their owners (the caller judges which
        owners are gone)."""

    @abc.abstractmethod
    def claim_for_recovery(
        self, workflow_id: str, from_executor: str, executor_id: str, now: int
    ) -> WorkflowRow | None:
        """Take over a PENDING workflow still owned by ``from_executor``, counting an
        attempt; None if it is no longer so (someone else took it, or it finished)."""

    # -- queues: enqueue, claim, release ----------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, news: Sequence[NewWorkflow], now: int) -> list[EnqueueResult]:
        """Write ENQUEUED workflows (DELAYED when ``delay_until > now``) in one round trip and
        one commit, waking listening workers with one notification per queue. One result per
        input, in order. An existing id or a held dedup key writes nothing for that entry."""

    @abc.abstractmethod
    def enqueue_on(
        self, connection: object, news: Sequence[NewWorkflow], now: int
    ) -> list[EnqueueResult]:
        """As :meth:`enqueue`, but inside the caller's open transaction on ``connection`` (a
        psycopg connection, a sqlite3 connection, or a SQLAlchemy ``Connection`` / ``Session``
        of the same database). Never commits or rolls back: the caller's commit makes the
        workflows exist and wakes workers; a rollback leaves no trace."""

    @abc.abstractmethod
    def claim(
        self,
        executor_id: str,
        queues: Sequence[str],
        app_version: str,
        limit: int,
        now: int,
        finishes: Sequence[Finish] = (),
    ) -> list[WorkflowRow]:
        """In one transaction: record ``finishes`` (each only if still PENDING and owned by
        ``executor_id``), then claim up to ``limit`` ENQUEUED workflows of ``queues`` whose
        ``app_version`` is NULL or ``app_version``, not expired, lowest priority first (0 =
        none, before any), FIFO within a priority. Claimed rows become PENDING, owned by
        ``executor_id``, with ``attempts + 1``, ``app_version`` filled in, ``started_at`` and
        ``deadline_at`` set if unset. Concurrent claimers never get the same row (``FOR UPDATE
        SKIP LOCKED`` on Postgres, ``BEGIN IMMEDIATE`` on SQLite)."""

    @abc.abstractmethod
    def release(
        self,
        executor_id: str,
        ids: Sequence[str],
        now: int,
        *,
        count_attempt: bool,
        default_queue: str = "default",
    ) -> list[str]:
        """Give PENDING workflows owned by ``executor_id`` back to their queue (ENQUEUED,
        no owner; a NULL queue becomes ``default_queue``) so another worker resumes them from
        their last step. ``count_attempt=False`` (a warm shutdown) undoes the attempt the
        next claim adds. Wakes workers. Returns the ids released."""

    @abc.abstractmethod
    def retry_later(
        self, workflow_id: str, executor_id: str, delay_until: int, error: str | None, now: int
    ) -> bool:
        """A workflow-level retry: PENDING (owned by ``executor_id``) becomes DELAYED until
        ``delay_until`` (ENQUEUED if that is not after ``now``), ``retries + 1``, no owner,
        the attempt not counted, ``error`` kept as the last error. True if it was done."""

    @abc.abstractmethod
    def tick(self, now: int) -> QueueTick:
        """Queue maintenance: due DELAYED rows become ENQUEUED (waking workers), ENQUEUED or
        DELAYED rows past ``expires_at`` become CANCELLED, PENDING rows past ``deadline_at``
        become CANCELLED with their unfinished descendants (as :meth:`cancel` does); report
        the next due time. One statement on Postgres."""

    @abc.abstractmethod
    def find_dedup(self, queue: str, dedup_id: str) -> str | None:
        """Id of the ENQUEUED/DELAYED/PENDING workflow holding ``(queue, dedup_id)``."""

    @abc.abstractmethod
    def listen(self) -> Listener:
        """A new listener for enqueue notifications (its own connection)."""

    # -- queues registry ---------------------------------------------------------------------
    @abc.abstractmethod
    def register_queues(self, names: Sequence[str], now: int) -> None:
        """Record queue names as known (workers record what they serve), so producers
        without the app's code can check a name."""

    @abc.abstractmethod
    def known_queues(self) -> set[str]:
        """Every queue name recorded by :meth:`register_queues`."""

    # -- flow control ------------------------------------------------------------------------
    @abc.abstractmethod
    def declare_queues(self, specs: Sequence[Queue], app_version: str, now: int) -> None:
        """Record ``app_version`` (first seen ``now``) and its queue declarations. Each
        replaces the stored declaration of its queue unless that one comes from a newer
        version (seen later): the newest version's limits win."""

    @abc.abstractmethod
    def queue_depths(self) -> list[QueueDepth]:
        """Waiting and running work per queue and partition (only where there is some)."""

    @abc.abstractmethod
    def queue_specs(self) -> dict[str, QueueRecord]:
        """Every recorded queue with the limits in force and the version that set them."""

    @abc.abstractmethod
    def claim_limited(
        self, executor_id: str, queue: Queue, app_version: str, limit: int, now: int
    ) -> LimitedClaim:
        """Claim up to ``limit`` ENQUEUED workflows of one limited queue (as :meth:`claim`
        does: order, versions, expiry), never exceeding ``queue``'s limits: ``concurrency``
        PENDING in the queue, ``worker_concurrency`` PENDING owned by ``executor_id``, and
        ``rate_limit`` claims in any sliding window of its period; per partition key when
        ``partitioned``, taking each partition's first workflow before any partition's second.
        Serialised with every other claim of the queue (or partition), so concurrent claimers
        never overshoot a limit together. Its own transaction."""

    # -- heartbeats ------------------------------------------------------------------------
    @abc.abstractmethod
    def heartbeat(self, beat: ExecutorBeat) -> None:
        """Insert or refresh an executor's heartbeat row (its own small table; unlogged on
        Postgres)."""

    @abc.abstractmethod
    def remove_executor(self, executor_id: str) -> None:
        """Delete an executor's heartbeat row (clean stop, or reaped once recovered)."""

    @abc.abstractmethod
    def list_executors(self) -> list[ExecutorBeat]:
        """Every heartbeat row."""

    @abc.abstractmethod
    def stale_executors(self, cutoff: int) -> list[tuple[str, bool]]:
        """Executors owning PENDING workflows with no heartbeat at or after ``cutoff``:
        ``(executor_id, has_row)``; ``has_row`` False means no heartbeat row at all."""

    @abc.abstractmethod
    def orphans(self, executor_id: str) -> list[OrphanRef]:
        """The PENDING workflows of ``executor_id``, with their parents' status."""

    # -- inspection (``taskflow status`` / ``taskflow inspect``) ----------------------------
    @abc.abstractmethod
    def running_by_executor(self) -> dict[str, dict[str, int]]:
        """How many PENDING workflows of each name every executor owns:
        ``{executor_id: {workflow name: count}}`` (one aggregate over the running rows)."""

    @abc.abstractmethod
    def list_running(self, limit: int) -> list[RunningRef]:
        """Up to ``limit`` PENDING workflows, by executor, oldest start first."""

    @abc.abstractmethod
    def list_delayed(self, limit: int, queue: str | None = None) -> list[DelayedRef]:
        """Up to ``limit`` DELAYED workflows (of ``queue`` only, when given), soonest
        ``delay_until`` first, those without one (waiting only for a message, event or
        child) last."""

    @abc.abstractmethod
    def finished_by_executor(self, since: int) -> dict[str, dict[Status, int]]:
        """How many workflows each executor finished at or after ``since``, per final
        status: ``{executor_id: {status: count}}``. Its cost grows with the rows finished
        since then, not with the table."""

    # -- messages, events and parked waits --------------------------------------------------
    @property
    @abc.abstractmethod
    def wakeups(self) -> WakeHub:
        """This process's waiters on messages, events and streams."""

    @abc.abstractmethod
    def send_message(
        self,
        destination_id: str,
        topic: str,
        message: str,
        now: int,
        send_key: str | None = None,
        sender: tuple[str, int, str] | None = None,
    ) -> Delivery:
        """In one transaction: if ``destination_id`` exists, append ``message`` to its inbox
        under ``topic`` ('' for none) unless ``send_key`` was used before, record the sending
        step ``sender`` = (workflow id, step id, step name) when given, and wake the
        destination if it is parked in recv on this topic."""

    @abc.abstractmethod
    def take_message(
        self, workflow_id: str, topic: str, step_id: int, step_name: str, started_at: int, now: int
    ) -> tuple[str | None, Status | None]:
        """In one transaction: if the workflow is PENDING and step ``step_id`` is not
        recorded, remove its oldest message of ``topic`` and record it as that step's
        output. Returns the message (None when there was none) and the workflow's status."""

    @abc.abstractmethod
    def set_event(
        self,
        workflow_id: str,
        key: str,
        value: str,
        now: int,
        step: tuple[int, str] | None = None,
    ) -> Status | None:
        """In one transaction: set the latest value of the workflow's event ``key``, record
        step ``step`` = (step id, name) when given, and wake workflows parked waiting for it.
        Returns the workflow's status."""

    @abc.abstractmethod
    def get_event(self, workflow_id: str, key: str) -> tuple[str | None, Status | None]:
        """The latest value of a workflow's event key (None: not set) and its status (None:
        no such workflow)."""

    @abc.abstractmethod
    def park(
        self,
        workflow_id: str,
        executor_id: str,
        wait: Wait,
        now: int,
        default_queue: str = "default",
    ) -> Status | None:
        """Guarded by PENDING and ``executor_id``: give the workflow's slots back while it
        waits: DELAYED with ``wait`` recorded, or ENQUEUED (waking workers) when what it
        waits for is already there. The attempt is not counted. Returns the new status, or
        None when the guard failed (cancelled, or owned by someone else now)."""

    # -- streams ---------------------------------------------------------------------------
    @abc.abstractmethod
    def write_stream(
        self,
        workflow_id: str,
        key: str,
        value: str | None,
        now: int,
        step: tuple[int, str] | None = None,
    ) -> StreamWrite:
        """Append ``value`` to the workflow's stream ``key`` at the next offset (0, 1, 2...);
        ``value`` None appends the row that closes the stream. In one transaction (one
        statement on Postgres), with the recording of step ``step`` = (step id, name) when
        given, so a replay does not append twice:

        - no such workflow: nothing is written (``status`` None);
        - the stream is closed: a value is refused (``closed``, nothing written, no step
          recorded); a second close writes no row but records its step;
        - ``step`` is recorded already (by an earlier execution): nothing is written.

        Wakes readers of the workflow's streams (``streams_key``) in this process and, on
        Postgres, in others. Concurrent appends to one stream never share an offset."""

    @abc.abstractmethod
    def read_stream(self, workflow_id: str, key: str, after: int, limit: int) -> StreamRead:
        """Up to ``limit`` rows of the workflow's stream ``key`` with an offset above
        ``after``, in offset order (a None value is the close row), and the workflow's status
        (None: no such workflow), both from one snapshot: when the status is finished and
        fewer than ``limit`` rows came back, nothing was written after them."""

    # -- control ---------------------------------------------------------------------------
    @abc.abstractmethod
    def cancel(self, ids: Sequence[str], now: int) -> list[str]:
        """In one statement: CANCELLED (``finished_at = now``, no output or error, the
        executor id kept) for each of ``ids`` and each of their descendants, at any depth,
        that is ENQUEUED, DELAYED or PENDING. Finished and unknown workflows are left alone.
        Returns the ids cancelled, in no particular order."""

    @abc.abstractmethod
    def resume(
        self,
        ids: Sequence[str],
        now: int,
        queue: str | None = None,
        default_queue: str = "default",
    ) -> list[ControlRef]:
        """All or nothing, in one statement on Postgres (one transaction on SQLite): if every
        one of ``ids`` (distinct) exists and is CANCELLED, ERROR or
        MAX_RECOVERY_ATTEMPTS_EXCEEDED, each goes back to ``queue`` (else its own, else
        ``default_queue``) as ENQUEUED (DELAYED while its ``delay_until`` is ahead), waking
        workers: no owner, outcome, attempts, retries or deadline. The last recorded step's
        error is forgotten when it is what ended the workflow (see ``resume.sql``). Returns
        the rows found, as they were, with ``changed`` set if resumed. A dedup key held
        meanwhile by another workflow raises :class:`WorkflowDeduplicatedError` and changes
        nothing."""

    @abc.abstractmethod
    def set_delay(self, workflow_id: str, delay_until: int, now: int) -> ControlRef | None:
        """Move a DELAYED workflow's ``delay_until``; it becomes ENQUEUED (waking workers)
        when that is not after ``now``. Returns the row as found (``changed`` False when it
        was not DELAYED), or None when there is no such workflow. One statement on
        Postgres."""

    # -- listing, forks and versions -------------------------------------------------------
    @abc.abstractmethod
    def list_workflows(
        self,
        where: WorkflowFilter,
        limit: int | None,
        offset: int = 0,
        newest_first: bool = True,
        load_inputs: bool = False,
        load_outputs: bool = False,
    ) -> list[WorkflowRow]:
        """One page of workflows matching every filter set in ``where``, by ``created_at``
        (newest first unless ``newest_first`` is False; insertion order within one
        millisecond), skipping ``offset``, at most ``limit`` (None: all). ``inputs`` is ''
        and ``output`` None unless loaded. One query, served by an index per filter."""

    @abc.abstractmethod
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
        """In one transaction: a new ENQUEUED workflow ``new_id`` with the name, inputs,
        user, priority and timeout of ``workflow_id``, on ``queue``, with ``app_version``
        (None: the original's), holding copies of the original's steps before
        ``start_step`` and of the events and stream rows it wrote before that step started
        (see ``fork_workflow.sql``), waking workers. None when ``workflow_id`` does not
        exist; an existing ``new_id`` writes nothing (``created`` False, ``conflict``
        "id")."""

    @abc.abstractmethod
    def list_versions(self) -> list[VersionRow]:
        """Every recorded app version, the latest (newest ``version_at``) first."""

    @abc.abstractmethod
    def set_latest_version(self, version: str, now: int) -> bool:
        """Make a recorded version the latest (its ``version_at`` past every other one's);
        False when it was never recorded."""

    # -- retention -------------------------------------------------------------------------
    @abc.abstractmethod
    def prune(self, before_ms: int, batch: int, now: int) -> PruneResult:
        """Delete at most ``batch`` finished workflows (SUCCESS, ERROR, CANCELLED,
        MAX_RECOVERY_ATTEMPTS_EXCEEDED) with ``finished_at < before_ms``, oldest first,
        together with their steps, events, streams and the messages addressed to them, in
        one short transaction (one statement on Postgres, whose rows are picked ``FOR UPDATE
        SKIP LOCKED``: a worker or an operator touching one of them is never blocked, the
        row is left for a later batch). A finished child is kept while its parent is
        unfinished (the parent may still read its result). When fewer than ``batch``
        workflows were found (the last batch of a pass: the side tables are scanned whole,
        so once per pass), up to ``batch`` stale rows of two side tables go too:
        ``debounces`` rows whose workflow is no longer waiting to start (started, finished
        or gone: the next debounce of the key begins a new cycle anyway), and
        ``queue_starts`` rows older than ``before_ms`` and outside their queue's recorded
        rate window at ``now``. The caller repeats while a count reaches ``batch`` (see
        :func:`taskflow.retention.prune`)."""

    @abc.abstractmethod
    def count_prunable(self, before_ms: int, now: int) -> PruneResult:
        """What :meth:`prune` would delete, in every batch together, counted without
        deleting anything (for ``taskflow prune --dry-run``)."""

    @abc.abstractmethod
    def purge_queue(self, queue: str, now: int) -> list[str]:
        """In one statement: CANCELLED (as :meth:`cancel` sets it) for every workflow of
        ``queue`` still waiting, ENQUEUED or DELAYED (parked ones included), and for their
        unfinished descendants at any depth; PENDING workflows of ``queue`` are running and
        left alone (one claimed while the purge runs too). Returns every id cancelled, in
        no particular order."""

    # -- debouncing --------------------------------------------------------------------------
    @abc.abstractmethod
    def debounce(
        self, new: NewWorkflow, key: str, delay_ms: int, max_wait_ms: int | None, now: int
    ) -> DebounceResult:
        """Debounce workflow ``new.name`` under ``key``, in one transaction serialised with
        every other debounce of the same ``(new.name, key)`` (the ``debounces`` row is locked
        first on Postgres; ``BEGIN IMMEDIATE`` on SQLite), so concurrent producers never leave
        two waiting workflows for one key.

        If the ``debounces`` row of ``(new.name, key)`` names a workflow that is still DELAYED
        and has never started, that workflow gets ``new.inputs`` and ``delay_until = now +
        delay_ms``, capped at ``first_at + max_wait_ms`` when ``max_wait_ms`` is given.
        Otherwise (no row, or its workflow started, finished or vanished) a new cycle starts:
        ``new`` is inserted (unless its id exists) with ``delay_until = now + delay_ms``, capped
        at ``now + max_wait_ms``, and the row records ``new.id`` with ``first_at = now``.
        Either way the workflow is DELAYED while ``delay_until > now``, else ENQUEUED (waking
        workers). ``new.status`` and ``new.delay_until`` are ignored: the rule above sets
        them; ``new.queue`` None means the default queue."""

    # -- schedules and beat leadership -----------------------------------------------------
    @abc.abstractmethod
    def create_schedule(self, row: ScheduleRow) -> bool:
        """Insert a schedule; False (nothing written) if its name exists."""

    @abc.abstractmethod
    def put_schedules(
        self, rows: Sequence[ScheduleRow], now: int, replace_source: str | None = None
    ) -> None:
        """In one transaction, insert or update each schedule by name. An existing one gets
        every definition column of its row (workflow, expression, tz, context, inputs,
        backfill, queue, priority, options, source; ``updated_at = now``) but keeps
        ``paused``, ``created_at``, ``last_fired_at`` and, when expression and tz are
        unchanged, ``next_fire_at`` (else it takes the row's, which the caller computed from
        ``now``). With ``replace_source``, every schedule of that source whose name is not
        among ``rows`` is deleted too: code-declared schedules removed from the code vanish,
        and a set of schedules is replaced atomically. Names must be distinct
        (:class:`ConfigurationError` otherwise, naming the duplicate)."""

    @abc.abstractmethod
    def get_schedule(self, name: str) -> ScheduleRow | None:
        """The stored schedule, or None."""

    @abc.abstractmethod
    def list_schedules(self) -> list[ScheduleRow]:
        """Every schedule, by name."""

    @abc.abstractmethod
    def delete_schedule(self, name: str) -> bool:
        """Delete a schedule; True if it existed."""

    @abc.abstractmethod
    def pause_schedule(self, name: str, now: int) -> bool:
        """Pause a schedule (the beat skips it); True if it exists."""

    @abc.abstractmethod
    def resume_schedule(self, name: str, next_fire_at: int | None, now: int) -> bool:
        """Unpause a schedule; True if it exists. If it was paused and ``next_fire_at`` is
        given, that becomes its next fire time (the caller passes the next time after
        ``now``, so the pause is not backfilled); otherwise the stored one is kept."""

    @abc.abstractmethod
    def due_schedules(self, now: int, limit: int) -> list[ScheduleRow]:
        """Up to ``limit`` unpaused schedules with ``next_fire_at <= now``, soonest first
        (then by name)."""

    @abc.abstractmethod
    def next_schedule_due(self) -> int | None:
        """The earliest ``next_fire_at`` of the unpaused schedules (None: there are none)."""

    @abc.abstractmethod
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
        """Fire a schedule, in one transaction: move its ``next_fire_at`` from
        ``expected_next`` to ``new_next`` (``last_fired_at`` becomes ``last_fired`` unless
        that is None; ``updated_at = now``) if it is unpaused, its ``next_fire_at`` is still
        ``expected_next`` and, when ``lease = (holder, term)`` is given, ``holder`` still
        holds the beat lease of that term at ``now``; then enqueue ``news`` as
        :meth:`enqueue` does (an existing id writes nothing), waking workers at commit.

        Returns the enqueue results, or None when the guard failed and nothing was written:
        another beat fired first, the schedule was changed, paused or deleted, or this beat
        lost its leadership (a beat paused past its lease never fires what its successor
        fired). Concurrent fires of one schedule serialise on its row (Postgres: the row
        lock, and the lease row is read ``FOR SHARE`` against a takeover; SQLite:
        ``BEGIN IMMEDIATE``)."""

    @abc.abstractmethod
    def acquire_beat_lease(self, holder: str, lease_ms: int, now: int) -> int | None:
        """Take or renew the beat lease until ``now + lease_ms``, in one statement: taken
        (its term + 1) when nobody holds it or the lease ended before ``now``, renewed (term
        unchanged) when ``holder`` holds it already. Returns the term when ``holder`` holds
        the lease afterwards, None when another holder's lease runs."""

    @abc.abstractmethod
    def release_beat_lease(self, holder: str) -> None:
        """End the lease at once if ``holder`` holds it (a clean shutdown hands over
        without waiting for the lease to run out); the holder and term stay recorded."""

    @abc.abstractmethod
    def beat_lease(self) -> BeatLease | None:
        """The beat lease as stored (None: no beat ever ran)."""


class WorkflowFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`Broker.list_workflows` selects: every field set must match (times are
    ms, ``created_from`` inclusive, ``created_before`` exclusive)."""

    statuses: list[Status] | None = None
    name: str | None = None
    queue: str | None = None
    user: str | None = None
    app_version: str | None = None
    created_from: int | None = None
    created_before: int | None = None


class VersionRow(msgspec.Struct, frozen=True):
    """A recorded app version: first seen at ``created_at``, the latest since
    ``version_at`` (ms)."""

    version: str
    created_at: int
    version_at: int


class PruneResult(msgspec.Struct, frozen=True):
    """Rows one retention pass deleted (or, from :meth:`Broker.count_prunable`, would
    delete), per table."""

    workflows: int = 0
    steps: int = 0
    events: int = 0
    streams: int = 0
    messages: int = 0
    debounces: int = 0
    queue_starts: int = 0

    def __add__(self, other: PruneResult) -> PruneResult:
        """Per-table sums (totals over batches)."""
        mine, theirs = msgspec.structs.astuple(self), msgspec.structs.astuple(other)
        return PruneResult(*(a + b for a, b in zip(mine, theirs, strict=True)))

    def full(self, batch: int) -> bool:
        """True when a table gave a whole ``batch``: more may be left to delete."""
        return max(self.workflows, self.debounces, self.queue_starts) >= batch


class DebounceResult(msgspec.Struct, frozen=True):
    """What one debounce call did: ``workflow_id`` is the workflow it created or pushed back;
    ``created`` a new cycle began (a new workflow was written), ``pushed`` the waiting one got
    the new inputs and delay. Neither: the id of a new cycle existed already (a replayed
    call), nothing was written to it. ``status`` and ``delay_until`` are as written (None
    when nothing was)."""

    workflow_id: str
    created: bool
    pushed: bool
    status: Status | None = None
    delay_until: int | None = None


class StreamWrite(msgspec.Struct, frozen=True):
    """What one stream write did: ``offset`` is the row it appended (None: none, see
    ``closed`` and ``recorded``); ``closed`` the stream was closed before this call;
    ``recorded`` the call recorded its step (False without a step, or when an earlier
    execution had); ``status`` the workflow's status (None: no such workflow)."""

    offset: int | None
    closed: bool
    recorded: bool
    status: Status | None


class StreamRead(msgspec.Struct, frozen=True):
    """One batch of a stream: ``(offset, value)`` rows in order (a None value closes the
    stream) and the workflow's status read with them (None: no such workflow)."""

    rows: list[tuple[int, str | None]]
    status: Status | None


__all__ = [
    "Broker",
    "DebounceResult",
    "Listener",
    "PendingRef",
    "PruneResult",
    "StepWrite",
    "StreamRead",
    "StreamWrite",
    "VersionRow",
    "WorkflowFilter",
    "load_queries",
]
