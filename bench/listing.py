"""Suite ``listing``: how long ``Client.list_workflows`` takes for one filtered page with
1,000,000 workflows in the table.

The table is filled by one ``INSERT ... SELECT`` over a row generator (``generate_series``
on PostgreSQL, a recursive CTE on SQLite), with a realistic mix: 29 days of history one
workflow every 2.5 s, the newest 2% still waiting or running, the rest mostly SUCCESS with
some ERROR, CANCELLED and parked ones; twenty workflow names of uneven popularity and a rare
one; five queues; a user on 30%; five app versions in deployment order. Every column comes
from its own multiplicative hash of the row number, so filters combine like independent
ones. Then each case (one filter, or a few together) lists one page of 50 through a
``Client``, end to end (query, rows, ``WorkflowInfo`` objects), many times; the report gives
the median and p95, and the index the planner used.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.common import DIALECT_NAMES, BenchError, Options, progress
from bench.databases import ScratchDatabase, scratch_database, sqlite_path
from bench.report import SuiteReport, Table, suite_report
from bench.stats import Summary, ms
from taskflow import Client
from taskflow.broker.base import WorkflowFilter
from taskflow.broker.listing import listing_query
from taskflow.status import Status

ROWS = 1_000_000
QUICK_ROWS = 20_000
PAGE = 50
"""Rows per page, as ``taskflow workflows list`` shows by default."""
REPEATS = 20
"""Timed calls of each case per round (after one untimed call)."""
QUICK_REPEATS = 3
TARGET_MS = 50.0
"""A filtered page must come back within this on PostgreSQL (the issue's figure)."""

BASE_MS = 1_700_000_000_000
STEP_MS = 2_500
"""One workflow every 2.5 s: 1,000,000 rows span 29 days."""


def fill_sql(dialect: str, rows: int) -> str:
    """The one statement that inserts ``rows`` workflows."""

    def mod(a: str, b: int) -> str:
        # SQLite's mod() returns a float; its % keeps integers. psycopg would read a bare %
        # as a parameter marker, so PostgreSQL gets MOD().
        return f"MOD({a}, {b})" if dialect == "postgres" else f"(({a}) % {b})"

    # A hash per column: the high bits of (x * odd constant) mod 2^32, scaled to 0..999.
    status, name, queue, user, user_id = (
        f"({mod(f'x * {m}', 4294967296)} / 4294968)"
        for m in (2654435761, 2246822519, 3266489917, 668265263, 374761393)
    )
    live = rows - rows // 50
    waiting = f"x > {live} AND {status} < 500"
    table = "taskflow.workflows" if dialect == "postgres" else "workflows"
    created = f"{BASE_MS} + x * {STEP_MS}"
    return f"""
INSERT INTO {table} (id, name, status, queue, inputs, output, error, executor_id, app_version,
                     user_name, attempts, created_at, updated_at, started_at, finished_at)
SELECT 'wf-' || x,
       CASE WHEN {name} = 0 THEN 'reports.rare'
            ELSE 'shop.task' || ({name} * {name} / 50000) END,
       CASE WHEN x > {live} THEN
                CASE WHEN {status} < 500 THEN 'ENQUEUED'
                     WHEN {status} < 800 THEN 'PENDING' ELSE 'DELAYED' END
            WHEN {status} < 950 THEN 'SUCCESS'
            WHEN {status} < 980 THEN 'ERROR'
            WHEN {status} < 995 THEN 'CANCELLED'
            ELSE 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' END,
       CASE WHEN {queue} < 500 THEN 'default' WHEN {queue} < 750 THEN 'emails'
            WHEN {queue} < 900 THEN 'reports' WHEN {queue} < 990 THEN 'billing'
            ELSE 'rare' END,
       '{{"args":[' || x || ',"sku-' || {name} || '"],"kwargs":{{}}}}',
       CASE WHEN x <= {live} AND {status} < 950
            THEN '{{"ok":true,"receipt":"r-' || x || '"}}' END,
       CASE WHEN x <= {live} AND {status} >= 950 AND {status} < 980
            THEN '{{"type_name":"builtins.ValueError","message":"bad order ' || x
                 || '","traceback":"Traceback (most recent call last): ValueError"}}' END,
       CASE WHEN {waiting} THEN NULL ELSE 'bench-host:1:1' END,
       CASE WHEN {waiting} THEN NULL ELSE 'v' || (1 + (x - 1) * 5 / {rows}) END,
       CASE WHEN {user} < 700 THEN NULL ELSE 'user-' || {mod(f"x * 7 + {user_id}", 5000)} END,
       CASE WHEN {waiting} THEN 0 ELSE 1 END,
       {created}, {created} + 100,
       CASE WHEN {waiting} THEN NULL ELSE {created} + 10 END,
       CASE WHEN x <= {live} THEN {created} + 100 END
FROM {_generator(dialect, rows)}
"""


def _ms_time(ms_value: int) -> datetime:
    return datetime.fromtimestamp(ms_value / 1000, tz=UTC)


@dataclass(frozen=True)
class Case:
    """One page to list: a label and the keyword arguments of ``list_workflows``;
    ``combined`` when it filters on more than one column (not part of the target)."""

    label: str
    kwargs: dict[str, Any]
    combined: bool = False


def cases(rows: int) -> list[Case]:
    """Every case, for a table of ``rows`` workflows (times fall inside its history)."""
    newest = BASE_MS + rows * STEP_MS
    middle = BASE_MS + rows // 2 * STEP_MS
    week = 7 * 86_400_000
    return [
        Case("no filter", {}),
        Case("status=ERROR (3%)", {"status": "ERROR"}),
        Case(
            "status=MAX_RECOVERY_ATTEMPTS_EXCEEDED (0.5%)",
            {"status": Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED},
        ),
        Case("status in (ERROR, CANCELLED)", {"status": ["ERROR", "CANCELLED"]}),
        Case("status=PENDING (live)", {"status": "PENDING"}),
        Case("name=shop.task7 (common)", {"name": "shop.task7"}),
        Case("name=reports.rare (0.1%)", {"name": "reports.rare"}),
        Case("queue=rare (1%)", {"queue": "rare"}),
        Case("user=user-77", {"user": "user-77"}),
        Case("app_version=v1 (oldest fifth)", {"app_version": "v1"}),
        Case(
            "created in one hour, mid-history",
            {"start": _ms_time(middle), "end": _ms_time(middle + 3_600_000)},
        ),
        Case(
            "name=shop.task3, last 7 days", {"name": "shop.task3", "start": _ms_time(newest - week)}
        ),
        Case(
            "status=SUCCESS, oldest first, offset 1,000",
            {"status": "SUCCESS", "newest_first": False, "offset": 1_000},
        ),
        Case("no filter, with inputs and outputs", {"load_inputs": True, "load_outputs": True}),
        Case(
            "combined: status=ERROR, queue=billing",
            {"status": "ERROR", "queue": "billing"},
            combined=True,
        ),
        Case(
            "combined: status=ERROR, name=shop.task3, last 7 days",
            {"status": "ERROR", "name": "shop.task3", "start": _ms_time(newest - week)},
            combined=True,
        ),
        Case(
            "combined: status=ERROR, app_version=v1 (both spread differently in time)",
            {"status": "ERROR", "app_version": "v1"},
            combined=True,
        ),
    ]


@dataclass
class CaseResult:
    """Timings (seconds) of one case, and what the planner did."""

    case: Case
    samples: list[float] = field(default_factory=list)
    rows: int = 0
    plan: str = "?"

    @property
    def summary(self) -> Summary:
        """Median, p95 and range."""
        return Summary.of(self.samples)


@dataclass
class DialectResult:
    """Every case on one dialect."""

    dialect: str
    rows: int
    fill_seconds: float
    size: str
    results: list[CaseResult]


def _generator(dialect: str, rows: int) -> str:
    if dialect == "postgres":
        return f"generate_series(1::bigint, {rows}) AS g(x)"
    return (
        f"(WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < {rows}) "
        "SELECT x FROM r) AS g"
    )


def fill(db: ScratchDatabase, rows: int) -> tuple[float, str]:
    """Insert ``rows`` workflows and update the statistics; return the seconds it took and
    the table's size on disk with its indexes."""
    statement = fill_sql(db.dialect, rows)
    started = time.perf_counter()
    if db.dialect == "postgres":
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute(statement.encode())
            conn.execute("VACUUM ANALYZE taskflow.workflows")
            row = conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size('taskflow.workflows'))"
            ).fetchone()
            size = str(row[0]) if row else "?"
    else:
        lite = sqlite3.connect(sqlite_path(db), isolation_level=None)
        try:
            lite.execute("BEGIN")
            lite.execute(statement)
            lite.execute("COMMIT")
            lite.execute("ANALYZE")
            (pages,) = lite.execute("PRAGMA page_count").fetchone()
            (page_size,) = lite.execute("PRAGMA page_size").fetchone()
            size = f"{pages * page_size / 2**20:,.0f} MB (whole file)"
        finally:
            lite.close()
    return time.perf_counter() - started, size


def _filter(kwargs: dict[str, Any]) -> tuple[WorkflowFilter, dict[str, Any]]:
    """The broker filter and paging of a case (for EXPLAIN)."""
    status = kwargs.get("status")
    statuses = (
        None
        if status is None
        else [Status(s) for s in ([status] if isinstance(status, str) else status)]
    )

    def ms_of(when: datetime | None) -> int | None:
        return None if when is None else int(when.timestamp() * 1000)

    where = WorkflowFilter(
        statuses=statuses,
        name=kwargs.get("name"),
        queue=kwargs.get("queue"),
        user=kwargs.get("user"),
        app_version=kwargs.get("app_version"),
        created_from=ms_of(kwargs.get("start")),
        created_before=ms_of(kwargs.get("end")),
    )
    paging = {
        "offset": kwargs.get("offset", 0),
        "newest_first": kwargs.get("newest_first", True),
        "load_inputs": kwargs.get("load_inputs", False),
        "load_outputs": kwargs.get("load_outputs", False),
    }
    return where, paging


def _postgres_plan(node: dict[str, Any]) -> list[str]:
    found: list[str] = []
    kind = node.get("Node Type", "")
    if "Index Name" in node:
        found.append(f"{kind.replace(' Scan', '')}: {node['Index Name']}")
    elif kind in ("Seq Scan", "Sort"):
        found.append(kind)
    for child in node.get("Plans", []):
        found.extend(_postgres_plan(child))
    return found


def explain(client: Client, case: Case) -> str:
    """The indexes (or scans) the planner picks for the case's query."""
    where, paging = _filter(case.kwargs)
    broker: Any = client.broker
    if broker.dialect == "postgresql":
        text, params = listing_query(
            broker._q["list_workflows"],
            where,
            PAGE,
            paging["offset"],
            paging["newest_first"],
            paging["load_inputs"],
            paging["load_outputs"],
            list,
        )
        with psycopg.connect(client.conf.resolved_database_url(), autocommit=True) as conn:
            row = conn.execute(("EXPLAIN (FORMAT JSON) " + text).encode(), params).fetchone()
        plan = row[0] if row else []
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return ", ".join(dict.fromkeys(_postgres_plan(plan[0]["Plan"]))) or "?"
    text, params = listing_query(
        broker._q["list_workflows"],
        where,
        PAGE,
        paging["offset"],
        paging["newest_first"],
        paging["load_inputs"],
        paging["load_outputs"],
        lambda v: json.dumps(list(v)),
        -1,
    )
    lite = sqlite3.connect(client.conf.resolved_database_url().removeprefix("sqlite:///"))
    try:
        details = [r[3] for r in lite.execute("EXPLAIN QUERY PLAN " + text, params).fetchall()]
    finally:
        lite.close()
    return "; ".join(details)


def time_case(client: Client, case: Case, repeats: int, result: CaseResult) -> None:
    """One untimed call, then ``repeats`` timed ones."""
    call: Callable[[], Sequence[object]] = lambda: client.list_workflows(  # noqa: E731
        limit=PAGE, **case.kwargs
    )
    result.rows = len(call())
    for _ in range(repeats):
        started = time.perf_counter()
        found = call()
        result.samples.append(time.perf_counter() - started)
        if len(found) != result.rows:
            raise BenchError(f"{case.label}: {len(found)} rows, then {result.rows}")


def run_dialect(dialect: str, options: Options) -> DialectResult:
    """Fill a scratch database, then every case, round after round."""
    rows = QUICK_ROWS if options.quick else ROWS
    repeats = QUICK_REPEATS if options.quick else REPEATS
    with scratch_database(dialect, options) as db:
        with Client(db.url) as client:
            client.broker  # noqa: B018 - creates the schema before the fill
        progress(f"{dialect}: inserting {rows:,} workflows")
        seconds, size = fill(db, rows)
        progress(f"{dialect}: {rows:,} workflows in place in {seconds:.1f} s ({size})")
        results = [CaseResult(c) for c in cases(rows)]
        with Client(db.url) as client:
            for result in results:
                result.plan = explain(client, result.case)
            for index in range(options.sizes.rounds):
                for result in results:
                    time_case(client, result.case, repeats, result)
                worst = max(results, key=lambda r: r.summary.median)
                progress(
                    f"{dialect}: listing round {index + 1}: slowest median so far "
                    f"{ms(worst.summary.median)} ms ({worst.case.label})"
                )
    return DialectResult(dialect, rows, seconds, size, results)


def run(options: Options) -> SuiteReport:
    """The suite: every requested dialect in turn, rendered as one report block."""
    return render([run_dialect(d, options) for d in options.dialects], options)


# -- rendering ------------------------------------------------------------------------------


def render(results: Sequence[DialectResult], options: Options) -> SuiteReport:
    """The headline table (median per case and dialect), then p95, rows and plans."""
    return suite_report(
        "listing",
        "Listing workflows: results",
        options.quick,
        _method(results, options),
        summary_table(results),
        "Each case in detail (the plan is the planner's choice for the page's query):",
        detail_table(results),
    )


def _method(results: Sequence[DialectResult], options: Options) -> str:
    filled = ", ".join(
        f"{DIALECT_NAMES[r.dialect]}: {r.rows:,} rows in {r.fill_seconds:.1f} s, {r.size}"
        for r in results
    )
    repeats = QUICK_REPEATS if options.quick else REPEATS
    return (
        "One scratch database per dialect is filled by a single `INSERT ... SELECT` over a "
        "row generator (see bench/listing.py for the mix: 29 days of history, the newest 2% "
        "waiting or running, about 95% of the rest SUCCESS, 3% ERROR; 20 names of uneven "
        "popularity and a rare one; five queues; a user on 30%; five app versions), then "
        f"`VACUUM ANALYZE` on PostgreSQL, `ANALYZE` on SQLite ({filled}). Each case lists one "
        f"page of {PAGE} with `Client.list_workflows(limit={PAGE}, ...)`, newest first unless "
        "said otherwise, end to end in one process (query, rows, `WorkflowInfo` objects): one "
        f"untimed call, then {repeats} timed calls per round, {options.sizes.rounds} round(s); "
        f"the table gives the median and p95 over all timed calls. Target: under "
        f"{TARGET_MS:.0f} ms on PostgreSQL for every page filtered on one column (a time "
        "range may come with it); pages filtered on several columns (**combined**) are "
        "the planner's choice of index and are shown for what they cost."
    )


def summary_table(results: Sequence[DialectResult]) -> Table:
    """Cases down, dialects across: median (p95) ms."""
    headers = ["case", *(f"{DIALECT_NAMES[r.dialect]}: median (p95), ms" for r in results)]
    body: list[list[str]] = []
    for index, result in enumerate(results[0].results if results else []):
        cells = []
        for r in results:
            s = r.results[index].summary
            cells.append(f"**{ms(s.median, 2)}** ({ms(s.p95, 2)})")
        body.append([result.case.label, *cells])
    if results:
        body.append(
            [
                f"every page with one filter (or none) under {TARGET_MS:.0f} ms (median)",
                *(
                    "yes"
                    if all(
                        c.summary.median * 1000 < TARGET_MS
                        for c in r.results
                        if not c.case.combined
                    )
                    else "**no**"
                    for r in results
                ),
            ]
        )
    return Table(headers, body, "l" + "r" * len(results))


def detail_table(results: Sequence[DialectResult]) -> Table:
    """One line per dialect and case."""
    headers = ["dialect", "case", "rows", "median ms", "p95 ms", "max ms", "plan"]
    body = [
        [
            DIALECT_NAMES[r.dialect],
            c.case.label,
            str(c.rows),
            ms(c.summary.median, 2),
            ms(c.summary.p95, 2),
            ms(c.summary.maximum, 2),
            c.plan.replace("|", "/"),
        ]
        for r in results
        for c in r.results
    ]
    return Table(headers, body, "llrrrrl")


__all__ = ["cases", "fill", "fill_sql", "run"]
