"""The broker conformance suite: every method of ``Broker`` behaves the same on both dialects.

Each test runs twice (``database_url`` is parametrized over SQLite and Postgres) on a fresh,
migrated database.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from taskflow.broker import Broker
from taskflow.broker.base import PendingRef, load_queries
from taskflow.models import NewWorkflow, StepRow
from taskflow.status import Status

from .queueing import race

NOW = 1_700_000_000_000
"""A fixed timestamp (ms): the broker takes time from its caller, never from the clock."""


def new_workflow(
    workflow_id: str = "wf-1",
    *,
    name: str = "orders.process",
    status: Status = Status.PENDING,
    inputs: str = '{"args":[1],"kwargs":{}}',
    executor_id: str | None = "exec-a",
    app_version: str | None = "v1",
    created_at: int = NOW,
    queue: str | None = None,
    user: str | None = None,
    parent_id: str | None = None,
    priority: int | None = None,
    timeout_ms: int | None = None,
) -> NewWorkflow:
    return NewWorkflow(
        id=workflow_id,
        name=name,
        status=status,
        inputs=inputs,
        executor_id=executor_id,
        app_version=app_version,
        created_at=created_at,
        started_at=created_at if status is Status.PENDING else None,
        queue=queue,
        user=user,
        parent_id=parent_id,
        priority=priority,
        timeout_ms=timeout_ms,
    )


def step(step_id: int, *, output: str | None = '"ok"', error: str | None = None) -> StepRow:
    return StepRow(
        step_id=step_id,
        name=f"step-{step_id}",
        output=output,
        error=error,
        started_at=NOW + step_id,
        finished_at=NOW + step_id + 1,
    )


# -- start_workflow / get_workflow / get_status ---------------------------------------------


def test_start_workflow_creates_a_row_with_every_field(broker: Broker) -> None:
    new = new_workflow(
        "wf-full",
        queue="emails",
        user="alice",
        parent_id="parent-1",
        priority=7,
        timeout_ms=5_000,
    )
    result = broker.start_workflow(new, NOW)
    assert result.created is True
    assert result.row is None

    row = broker.get_workflow("wf-full")
    assert row is not None
    assert row.id == "wf-full"
    assert row.name == "orders.process"
    assert row.status is Status.PENDING
    assert row.inputs == '{"args":[1],"kwargs":{}}'
    assert row.output is None
    assert row.error is None
    assert row.queue == "emails"
    assert row.executor_id == "exec-a"
    assert row.app_version == "v1"
    assert row.user == "alice"
    assert row.parent_id == "parent-1"
    assert row.priority == 7
    assert row.attempts == 1  # a PENDING start is the first attempt
    assert row.created_at == NOW
    assert row.started_at == NOW
    assert row.finished_at is None
    assert row.timeout_ms == 5_000
    assert row.deadline_at == NOW + 5_000


def test_start_enqueued_workflow_has_no_attempt_and_no_priority(broker: Broker) -> None:
    broker.start_workflow(new_workflow("wf-q", status=Status.ENQUEUED, executor_id=None), NOW)
    row = broker.get_workflow("wf-q")
    assert row is not None
    assert row.status is Status.ENQUEUED
    assert row.attempts == 0
    assert row.priority is None
    assert row.started_at is None
    assert row.deadline_at is None
    assert row.executor_id is None


def test_start_existing_id_returns_existing_row_and_never_overwrites(broker: Broker) -> None:
    assert broker.start_workflow(new_workflow("wf-dup"), NOW).created
    again = new_workflow(
        "wf-dup",
        name="other.name",
        inputs='{"args":[2],"kwargs":{}}',
        executor_id="exec-b",
        app_version="v2",
        created_at=NOW + 10,
    )
    result = broker.start_workflow(again, NOW + 10)
    assert result.created is False
    assert result.row is not None
    assert result.row.id == "wf-dup"
    assert result.row.name == "orders.process"
    assert result.row.inputs == '{"args":[1],"kwargs":{}}'
    assert result.row.executor_id == "exec-a"
    assert result.row.app_version == "v1"
    assert result.row.created_at == NOW
    # And the stored row is untouched too.
    assert broker.get_workflow("wf-dup") == result.row


def test_start_existing_finished_id_returns_its_outcome(broker: Broker) -> None:
    broker.start_workflow(new_workflow("wf-done"), NOW)
    assert broker.finish_workflow("wf-done", Status.SUCCESS, '"result"', None, NOW + 5)
    result = broker.start_workflow(new_workflow("wf-done"), NOW + 10)
    assert result.created is False
    assert result.row is not None
    assert result.row.status is Status.SUCCESS
    assert result.row.output == '"result"'
    assert broker.get_status("wf-done") is Status.SUCCESS


def test_unknown_workflow_is_none(broker: Broker) -> None:
    assert broker.get_workflow("no-such-workflow") is None
    assert broker.get_status("no-such-workflow") is None
    assert broker.load_steps("no-such-workflow") == []


def test_get_status_is_the_stored_status(broker: Broker) -> None:
    broker.start_workflow(new_workflow("wf-a"), NOW)
    broker.start_workflow(new_workflow("wf-b", status=Status.ENQUEUED), NOW)
    assert broker.get_status("wf-a") is Status.PENDING
    assert broker.get_status("wf-b") is Status.ENQUEUED
    assert broker.get_status("wf-a") == "PENDING"


def test_ids_and_payloads_are_stored_verbatim(broker: Broker) -> None:
    weird_id = "wf 'quoted' \"double\" ; DROP TABLE workflows; -- é ✓"
    inputs = '{"args":["\\u0000 ünïcødé \' \\" %s %(x)s ?"],"kwargs":{}}'
    broker.start_workflow(new_workflow(weird_id, inputs=inputs), NOW)
    row = broker.get_workflow(weird_id)
    assert row is not None
    assert row.id == weird_id
    assert row.inputs == inputs


# -- record_step / load_steps ------------------------------------------------------------


def test_record_step_inserts_and_reports_status(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    write = broker.record_step("wf-1", step(0))
    assert write.inserted is True
    assert write.status is Status.PENDING
    assert write.existing is None
    assert broker.load_steps("wf-1") == [step(0)]


def test_record_step_twice_keeps_the_first_outcome(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    first = step(0, output='"first"')
    assert broker.record_step("wf-1", first).inserted

    second = StepRow(step_id=0, name="step-0", output=None, error='{"type_name":"x"}')
    write = broker.record_step("wf-1", second)
    assert write.inserted is False
    assert write.status is Status.PENDING
    assert write.existing == first
    assert broker.load_steps("wf-1") == [first]


def test_forget_step_drops_only_a_recorded_error(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    ok = step(0)
    failed = StepRow(step_id=1, name="step-1", error='{"type_name":"x","message":"m"}')
    broker.record_step("wf-1", ok)
    broker.record_step("wf-1", failed)
    assert broker.forget_step("wf-1", 0) is False  # a success is never forgotten
    assert broker.forget_step("wf-1", 1) is True
    assert broker.forget_step("wf-1", 1) is False
    assert broker.load_steps("wf-1") == [ok]
    # The step can now be recorded afresh.
    assert broker.record_step("wf-1", step(1)).inserted


def test_record_step_keeps_every_field(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    failed = StepRow(
        step_id=3,
        name="charge",
        output=None,
        error='{"type_name":"builtins.ValueError","message":"no"}',
        child_workflow_id="wf-1-3",
        started_at=NOW + 1,
        finished_at=NOW + 2,
    )
    broker.record_step("wf-1", failed)
    assert broker.load_steps("wf-1") == [failed]


def test_record_step_reports_cancelled_status(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    assert broker.set_status("wf-1", Status.CANCELLED, Status.PENDING, NOW + 1)
    write = broker.record_step("wf-1", step(0))
    assert write.status is Status.CANCELLED
    # A duplicate write also reports it.
    assert broker.record_step("wf-1", step(0)).status is Status.CANCELLED


def test_record_step_of_unknown_workflow_reports_no_status(broker: Broker) -> None:
    write = broker.record_step("no-such-workflow", step(0))
    assert write.status is None
    assert write.inserted is True


def test_load_steps_in_step_order_and_per_workflow(broker: Broker) -> None:
    broker.start_workflow(new_workflow("wf-1"), NOW)
    broker.start_workflow(new_workflow("wf-2"), NOW)
    for i in (3, 0, 10, 2, 1):
        broker.record_step("wf-1", step(i))
    broker.record_step("wf-2", step(5))
    assert [s.step_id for s in broker.load_steps("wf-1")] == [0, 1, 2, 3, 10]
    assert [s.step_id for s in broker.load_steps("wf-2")] == [5]


def test_concurrent_step_writers_agree_on_one_outcome(
    broker: Broker, make_broker: Callable[[], Broker]
) -> None:
    broker.start_workflow(new_workflow(), NOW)
    n = 4
    brokers = [make_broker() for _ in range(n)]
    for b in brokers:
        assert b.get_status("wf-1") is Status.PENDING  # connect before the race

    writes = race(n, lambda i: brokers[i].record_step("wf-1", step(0, output=f'"writer-{i}"')))
    inserted = [w for w in writes if getattr(w, "inserted", False)]
    assert len(inserted) == 1
    stored = broker.load_steps("wf-1")
    assert len(stored) == 1
    for w in writes:
        existing = getattr(w, "existing", None)
        if existing is not None:
            assert existing == stored[0]


# -- finish_workflow ---------------------------------------------------------------------


def test_finish_workflow_records_outcome_once(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    assert broker.finish_workflow("wf-1", Status.SUCCESS, '"done"', None, NOW + 100) is True
    row = broker.get_workflow("wf-1")
    assert row is not None
    assert row.status is Status.SUCCESS
    assert row.output == '"done"'
    assert row.error is None
    assert row.finished_at == NOW + 100

    # A slow duplicate never overwrites the first truth.
    assert broker.finish_workflow("wf-1", Status.ERROR, None, '"late"', NOW + 200) is False
    assert broker.get_workflow("wf-1") == row


def test_finish_workflow_records_errors(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    assert broker.finish_workflow("wf-1", Status.ERROR, None, '{"e":1}', NOW + 1)
    row = broker.get_workflow("wf-1")
    assert row is not None
    assert row.status is Status.ERROR
    assert row.output is None
    assert row.error == '{"e":1}'


@pytest.mark.parametrize("status", [Status.ENQUEUED, Status.DELAYED])
def test_finish_workflow_needs_pending(broker: Broker, status: Status) -> None:
    broker.start_workflow(new_workflow(status=status), NOW)
    assert broker.finish_workflow("wf-1", Status.SUCCESS, '"x"', None, NOW + 1) is False
    assert broker.get_status("wf-1") is status


def test_finish_cancelled_workflow_is_refused(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    assert broker.set_status("wf-1", Status.CANCELLED, Status.PENDING, NOW + 1)
    assert broker.finish_workflow("wf-1", Status.SUCCESS, '"x"', None, NOW + 2) is False
    row = broker.get_workflow("wf-1")
    assert row is not None
    assert row.status is Status.CANCELLED
    assert row.output is None


def test_finish_unknown_workflow_is_false(broker: Broker) -> None:
    assert broker.finish_workflow("nope", Status.SUCCESS, None, None, NOW) is False
    assert broker.get_workflow("nope") is None


# -- set_status --------------------------------------------------------------------------


def test_set_status_guarded_by_expected(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    assert broker.set_status("wf-1", Status.CANCELLED, Status.ENQUEUED, NOW + 1) is False
    assert broker.get_status("wf-1") is Status.PENDING

    assert broker.set_status("wf-1", Status.CANCELLED, Status.PENDING, NOW + 2) is True
    row = broker.get_workflow("wf-1")
    assert row is not None
    assert row.status is Status.CANCELLED
    assert row.finished_at == NOW + 2  # a finished status records when it finished

    # The same move again finds the workflow no longer PENDING.
    assert broker.set_status("wf-1", Status.CANCELLED, Status.PENDING, NOW + 3) is False
    assert broker.get_workflow("wf-1") == row


def test_set_status_records_and_keeps_error(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    err = '{"type_name":"taskflow.errors.MaxRecoveryAttemptsExceededError"}'
    assert broker.set_status(
        "wf-1", Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED, Status.PENDING, NOW + 1, error=err
    )
    row = broker.get_workflow("wf-1")
    assert row is not None
    assert row.status is Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED
    assert row.error == err

    # Resuming without a new error keeps the recorded one, and clears finished_at.
    assert broker.set_status("wf-1", Status.PENDING, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED, NOW + 2)
    row = broker.get_workflow("wf-1")
    assert row is not None
    assert row.status is Status.PENDING
    assert row.error == err
    assert row.finished_at is None


def test_set_status_unknown_workflow_is_false(broker: Broker) -> None:
    assert broker.set_status("nope", Status.CANCELLED, Status.PENDING, NOW) is False


def test_set_status_races_have_one_winner(
    broker: Broker, make_broker: Callable[[], Broker]
) -> None:
    broker.start_workflow(new_workflow(), NOW)
    targets = [Status.CANCELLED, Status.ERROR, Status.SUCCESS, Status.CANCELLED]
    brokers = [make_broker() for _ in targets]
    for b in brokers:
        assert b.get_status("wf-1") is Status.PENDING
    won = race(
        len(targets), lambda i: brokers[i].set_status("wf-1", targets[i], Status.PENDING, NOW + i)
    )
    assert won.count(True) == 1
    winner = won.index(True)
    assert broker.get_status("wf-1") is targets[winner]


# -- list_pending / claim_for_recovery ------------------------------------------------------


def test_list_pending_filters_by_app_version_and_status(broker: Broker) -> None:
    broker.start_workflow(new_workflow("b-late", name="wf.b", created_at=NOW + 2), NOW + 2)
    broker.start_workflow(new_workflow("a-early", name="wf.a", created_at=NOW + 1), NOW + 1)
    broker.start_workflow(
        new_workflow(
            "child", name="wf.child", executor_id="exec-b", parent_id="a-early", created_at=NOW + 3
        ),
        NOW + 3,
    )
    broker.start_workflow(new_workflow("other-version", name="wf.v2", app_version="v2"), NOW)
    broker.start_workflow(new_workflow("queued", status=Status.ENQUEUED), NOW)
    broker.start_workflow(new_workflow("finished"), NOW)
    broker.finish_workflow("finished", Status.SUCCESS, "null", None, NOW + 5)
    broker.start_workflow(new_workflow("cancelled"), NOW)
    broker.set_status("cancelled", Status.CANCELLED, Status.PENDING, NOW + 5)

    assert broker.list_pending("v1") == [
        PendingRef(id="a-early", name="wf.a", executor_id="exec-a", parent_id=None),
        PendingRef(id="b-late", name="wf.b", executor_id="exec-a", parent_id=None),
        PendingRef(id="child", name="wf.child", executor_id="exec-b", parent_id="a-early"),
    ]
    assert broker.list_pending("v2") == [
        PendingRef(id="other-version", name="wf.v2", executor_id="exec-a", parent_id=None)
    ]
    assert broker.list_pending("v3") == []


def test_claim_for_recovery_takes_over_and_counts_an_attempt(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    row = broker.claim_for_recovery("wf-1", "exec-a", "exec-b", NOW + 10)
    assert row is not None
    assert row.id == "wf-1"
    assert row.status is Status.PENDING
    assert row.executor_id == "exec-b"
    assert row.attempts == 2
    assert broker.get_workflow("wf-1") == row

    # The old owner is no longer the owner: claiming from it again finds nothing.
    assert broker.claim_for_recovery("wf-1", "exec-a", "exec-c", NOW + 20) is None
    # The new owner can be recovered from in turn, counting another attempt.
    again = broker.claim_for_recovery("wf-1", "exec-b", "exec-c", NOW + 30)
    assert again is not None
    assert again.executor_id == "exec-c"
    assert again.attempts == 3


def test_claim_for_recovery_guarded_by_owner(broker: Broker) -> None:
    broker.start_workflow(new_workflow(), NOW)
    assert broker.claim_for_recovery("wf-1", "exec-x", "exec-b", NOW + 1) is None
    row = broker.get_workflow("wf-1")
    assert row is not None
    assert row.executor_id == "exec-a"
    assert row.attempts == 1


@pytest.mark.parametrize("final", [Status.SUCCESS, Status.CANCELLED])
def test_claim_for_recovery_guarded_by_pending(broker: Broker, final: Status) -> None:
    broker.start_workflow(new_workflow(), NOW)
    if final is Status.SUCCESS:
        assert broker.finish_workflow("wf-1", final, "null", None, NOW + 1)
    else:
        assert broker.set_status("wf-1", final, Status.PENDING, NOW + 1)
    assert broker.claim_for_recovery("wf-1", "exec-a", "exec-b", NOW + 2) is None
    row = broker.get_workflow("wf-1")
    assert row is not None
    assert row.status is final
    assert row.executor_id == "exec-a"
    assert row.attempts == 1


def test_claim_for_recovery_unknown_workflow_is_none(broker: Broker) -> None:
    assert broker.claim_for_recovery("nope", "exec-a", "exec-b", NOW) is None


def test_two_claimers_race_exactly_one_wins(
    broker: Broker, make_broker: Callable[[], Broker]
) -> None:
    rounds = 10
    for r in range(rounds):
        broker.start_workflow(new_workflow(f"wf-{r}"), NOW)
    claimers = [make_broker(), make_broker()]
    for b in claimers:
        assert b.get_status("wf-0") is Status.PENDING  # connect before the race

    for r in range(rounds):
        wid = f"wf-{r}"

        def claim(i: int, wid: str = wid) -> object:
            return claimers[i].claim_for_recovery(wid, "exec-a", f"c{i}", NOW + 1)

        results = race(2, claim)
        winners = [i for i, row in enumerate(results) if row is not None]
        assert len(winners) == 1, f"round {r}: {results}"
        stored = broker.get_workflow(wid)
        assert stored is not None
        assert stored.executor_id == f"c{winners[0]}"
        assert stored.attempts == 2


# -- queries -----------------------------------------------------------------------------


def test_both_dialects_have_the_same_query_names() -> None:
    postgres = load_queries("postgres")
    sqlite = load_queries("sqlite")
    assert postgres.keys() == sqlite.keys()
    methods = {
        "start_workflow",
        "get_workflow",
        "get_status",
        "finish_workflow",
        "set_status",
        "record_step",
        "load_steps",
        "forget_step",
        "list_pending",
        "claim_for_recovery",
        "enqueue",
        "enqueue_conflicts",
        "find_dedup",
        "claim",
        "release",
        "retry_later",
        "tick",
        "register_queues",
        "known_queues",
        "heartbeat",
        "remove_executor",
        "list_executors",
        "stale_executors",
        "orphans",
        "cancel",
        "resume",
        "set_delay",
        "declare_queues",
        "queue_specs",
        "queue_depths",
        "lock_queue",
        "lock_partitions",
        "claim_queue",
        "claim_partitions",
        "rate_window",
        "prune_queue_starts",
    }
    assert methods <= postgres.keys()
    assert all(text.strip() for text in postgres.values())
    assert all(text.strip() for text in sqlite.values())


def test_postgres_queries_name_the_schema() -> None:
    queries = load_queries("postgres", "my_schema")
    # Takes an advisory lock and reads no table; its key includes the schema instead.
    tableless = {"lock_queue"}
    for name, text in queries.items():
        assert "{schema}" not in text, name
        assert name in tableless or '"my_schema".' in text, name
    for name, text in load_queries("sqlite").items():
        assert "{schema}" not in text, name
