"""(17) Retention at steady state: does each table stay bounded over 100,000 runs under a policy?

Most runs here are not executed: they are copies, made in SQL, of a few hundred real ones.
``sources`` real runs (300; 100 with ``--quick``) of a zero-latency model on a provider with a
token limit (so each model call writes its ledger row), each in its own ``Session``: of every
ten, seven call a no-op tool, one streams (DBOS streams), one waits for an approval and is
approved (events, messages, a RunState, a decision), and one calls a tool that fails its first
attempt (a step retry). Then ``days`` simulated UTC days (100; 50 with ``--quick``) ending at
today's midnight, each of ``runs / days`` runs: every table row of a source run (DBOS's status,
input, output, step outputs, streams, events, event history and messages; Timestep's usage,
tool calls, step retries, ledger rows, RunStates, decisions and session items) is copied under
a new workflow and session id, its times shifted so that the copy started at its place in the
day (evenly spread). Payloads are copied as they are (a copy's input still names its source's
session). The source runs themselves, started today, stay throughout.

After each day, one ``collect_garbage`` pass (``finished=30d,sessions=30d``) at that day's
end; the benchmark asserts that it deleted exactly the runs of the day that turned 30 days
old (none in the first 30 days). On Postgres a ``VACUUM`` follows (a real day gives autovacuum
time to run; its time is not the pass's). Figures: each table's rows and bytes every
``days / 10`` days (Postgres: ``pg_total_relation_size``; SQLite: its pages in ``dbstat``, and
the file's size), the passes' time per 10,000 deleted runs, and the time of the passes with
nothing to delete.
"""

from __future__ import annotations

import logging
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from agents import Agent, function_tool
from dbos import DBOS
from rich.progress import Progress

import timestep
from timestep._core.protocol import APPROVALS_EVENT

from ._agents import approve_me, noop_a
from ._common import launched, new_id, sync_engine

POLICY = "finished=30d,sessions=30d"
KEPT_DAYS = 30
_DAY_MS = 86_400_000
_CLONES = "bench_clones"  # this part's map of copies: source run and session, suffix, shift

_FAILED_ONCE: set[str] = set()


@function_tool
async def flaky() -> str:
    """Fails its first attempt in each run."""
    workflow_id = DBOS.workflow_id or ""
    if workflow_id not in _FAILED_ONCE:
        _FAILED_ONCE.add(workflow_id)
        raise RuntimeError("the first attempt fails")
    return "ok"


def _agent(name: str, tool: Any) -> Agent:
    return Agent(name=f"bench-steady-{name}", instructions="Answer.", tools=[tool], model="gc/zero")


AGENTS = {
    "tool": _agent("tool", noop_a),
    "stream": _agent("stream", noop_a),
    "approval": _agent("approval", approve_me),
    "retry": _agent("retry", flaky),
}
_KINDS = ("tool",) * 7 + ("stream", "approval", "retry")  # of every ten source runs

# How a copy's column is made from its source's: "id" appends the copy's suffix, "ms" / "s"
# shift an epoch time in milliseconds / seconds, "ts" a timestamp; "new": the database's own
# (autoincrement keys). Every other column is copied as it is. Per table: the column that
# names the run (or, "session", its session) and those columns.
_TABLES: dict[str, tuple[str, str, dict[str, str]]] = {
    "workflow_status": (
        "workflow_uuid",
        "workflow",
        {
            "workflow_uuid": "id",
            "parent_workflow_id": "id",
            "deduplication_id": "id",
            "created_at": "ms",
            "updated_at": "ms",
            "completed_at": "ms",
            "started_at_epoch_ms": "ms",
            "workflow_deadline_epoch_ms": "ms",
            "delay_until_epoch_ms": "ms",
            "debounce_deadline_epoch_ms": "ms",
        },
    ),
    "workflow_input": ("workflow_uuid", "workflow", {"workflow_uuid": "id"}),
    "workflow_output": ("workflow_uuid", "workflow", {"workflow_uuid": "id"}),
    "operation_outputs": (
        "workflow_uuid",
        "workflow",
        {
            "workflow_uuid": "id",
            "child_workflow_id": "id",
            "started_at_epoch_ms": "ms",
            "completed_at_epoch_ms": "ms",
        },
    ),
    "streams": ("workflow_uuid", "workflow", {"workflow_uuid": "id"}),
    "workflow_events": ("workflow_uuid", "workflow", {"workflow_uuid": "id"}),
    "workflow_events_history": ("workflow_uuid", "workflow", {"workflow_uuid": "id"}),
    "notifications": (
        "destination_uuid",
        "workflow",
        {"message_uuid": "id", "destination_uuid": "id", "created_at_epoch_ms": "ms"},
    ),
    "timestep_usage": (
        "workflow_id",
        "workflow",
        {"workflow_id": "id", "session_id": "id", "created_at": "ts"},
    ),
    "timestep_tool_calls": (
        "workflow_id",
        "workflow",
        {"workflow_id": "id", "session_id": "id", "created_at": "ts", "decided_at": "ts"},
    ),
    "timestep_step_retries": ("workflow_id", "workflow", {"workflow_id": "id", "updated_at": "ts"}),
    "timestep_model_calls": (
        "workflow_id",
        "workflow",
        {
            "call_id": "id",
            "workflow_id": "id",
            "session_id": "id",
            "reserved_at": "s",
            "expires_at": "s",
        },
    ),
    "timestep_run_states": (
        "workflow_id",
        "workflow",
        {
            "seq": "new",
            "state_id": "run_id",
            "workflow_id": "id",
            "session_id": "id",
            "created_at": "ts",
        },
    ),
    "timestep_decisions": ("workflow_id", "workflow", {"workflow_id": "id"}),
    "timestep_session_items": (
        "session_id",
        "session",
        {"id": "new", "session_id": "id", "item_key": "id", "created_at": "ts"},
    ),
}
_DBOS_TABLES = {name for name in _TABLES if not name.startswith("timestep_")}
# Measured beside the copied tables: the daily usage sums retention adds to.
_MEASURED = (*_TABLES, "timestep_usage_daily")


async def _source_runs(sources: int, progress: Progress, label: str) -> dict[str, str]:
    """``sources`` real runs, ``_KINDS`` in turn: their session ids by workflow id."""
    task = progress.add_task(label, total=sources)
    dbos_logger = logging.getLogger("dbos")
    level = dbos_logger.level
    dbos_logger.setLevel(logging.ERROR)  # not a warning per retried step on the progress bar
    runs: dict[str, str] = {}
    try:
        for n in range(sources):
            kind = _KINDS[n % len(_KINDS)]
            agent, workflow_id, session = AGENTS[kind], new_id("steady"), new_id("steady-s")
            if kind == "stream":
                run = await timestep.run_agent(
                    agent, "hi", timestep.Session(session), workflow_id=workflow_id, stream=True
                )
                async for _ in run.stream_events():
                    pass
            elif kind == "approval":
                handle = await timestep.start_agent_run(
                    agent,
                    "hi",
                    timestep.Session(session),
                    workflow_id=workflow_id,
                    wait_for_approvals=True,
                )
                while not await DBOS.get_event_async(
                    workflow_id, APPROVALS_EVENT, timeout_seconds=5
                ):
                    pass
                await timestep.approve(workflow_id, "call_0")
                await handle.result()
            else:
                await timestep.run_agent(
                    agent, "hi", timestep.Session(session), workflow_id=workflow_id
                )
            runs[workflow_id] = session
            progress.advance(task)
    finally:
        dbos_logger.setLevel(level)
    await timestep.flush_records()
    return runs


def _name(url: str, table: str) -> str:
    return f"dbos.{table}" if table in _DBOS_TABLES and not url.startswith("sqlite") else table


def _shifted(kind: str, column: str, postgres: bool) -> str:
    if kind == "id":
        return f"t.{column} || m.suffix"
    if kind == "run_id":  # an id made from its run's (a waiting run's snapshot): the copy's
        run = "t.workflow_id"
        return (
            f"CASE WHEN substr(t.{column}, 1, length({run})) = {run} "
            f"THEN {run} || m.suffix || substr(t.{column}, length({run}) + 1) "
            f"ELSE t.{column} || m.suffix END"
        )
    if kind == "ms":
        return f"t.{column} + m.shift_ms"
    if kind == "s":
        return f"t.{column} + m.shift_ms / 1000.0"
    if postgres:  # "ts"
        return f"t.{column} + m.shift_ms * interval '1 millisecond'"
    # SQLAlchemy's SQLite form of a DateTime, "YYYY-MM-DD HH:MM:SS.ffffff", so that it
    # compares as the retention pass's bound datetimes do.
    return (
        f"strftime('%Y-%m-%d %H:%M:%f', t.{column}, (m.shift_ms / 1000.0) || ' seconds') || '000'"
    )


def _copy_statements(url: str, engine: sa.Engine) -> list[str]:
    """One ``INSERT ... SELECT`` per table: the source rows of every run in ``_CLONES``."""
    postgres = not url.startswith("sqlite")
    inspector = sa.inspect(engine)
    quote = engine.dialect.identifier_preparer.quote
    statements = []
    for table, (key, names, kinds) in _TABLES.items():
        schema = "dbos" if postgres and table in _DBOS_TABLES else None
        columns = [
            c["name"]
            for c in inspector.get_columns(table, schema=schema)
            if kinds.get(c["name"]) != "new"
        ]
        values = ", ".join(
            _shifted(kinds[c], quote(c), postgres) if c in kinds else f"t.{quote(c)}"
            for c in columns
        )
        statements.append(
            f"INSERT INTO {_name(url, table)} ({', '.join(quote(c) for c in columns)}) "
            f"SELECT {values} FROM {_name(url, table)} AS t "
            f"JOIN {_CLONES} AS m ON t.{key} = m.source_{names}"
        )
    return statements


def _sizes(url: str, engine: sa.Engine) -> dict[str, Any]:
    """Rows and bytes (with indexes) of each measured table, and the database's bytes."""
    tables: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        if url.startswith("sqlite"):
            pages: dict[str, int] = dict(
                conn.execute(
                    sa.text(
                        "SELECT s.tbl_name, sum(d.pgsize) FROM dbstat AS d "
                        "JOIN sqlite_schema AS s ON d.name = s.name GROUP BY s.tbl_name"
                    )
                ).all()
            )
            page_size = conn.execute(sa.text("PRAGMA page_size")).scalar_one()
            database = page_size * conn.execute(sa.text("PRAGMA page_count")).scalar_one()
            free = page_size * conn.execute(sa.text("PRAGMA freelist_count")).scalar_one()
        for table in _MEASURED:
            name = _name(url, table)
            rows = int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
            if url.startswith("sqlite"):
                size = int(pages.get(table, 0))
            else:
                size = int(
                    conn.execute(
                        sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": name}
                    ).scalar_one()
                )
            tables[table] = {"rows": rows, "bytes": size}
        if not url.startswith("sqlite"):
            database = conn.execute(
                sa.text("SELECT pg_database_size(current_database())")
            ).scalar_one()
            free = 0
    return {"tables": tables, "database_bytes": int(database), "free_bytes": int(free)}


def _vacuum(url: str, engine: sa.Engine) -> float:
    if url.startswith("sqlite"):
        return 0.0
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in _MEASURED:
            conn.execute(sa.text(f"VACUUM {_name(url, table)}"))
    return time.perf_counter() - started


async def run(
    kind: str, url: str, runs: int, days: int, sources: int, progress: Progress
) -> dict[str, Any]:
    if days <= KEPT_DAYS:
        raise ValueError(f"{days} days: the policy deletes nothing before day {KEPT_DAYS + 1}")
    per_day = runs // days
    async with launched(url):
        timestep.limit_provider("gc", tokens=10**12, per_seconds=60.0)
        timestep.set_tool_options(flaky, max_attempts=2, interval_seconds=0.0)
        for agent in AGENTS.values():
            timestep.register_agent(agent)
        started = time.perf_counter()
        source_sessions = await _source_runs(sources, progress, f"{kind}: steady gc, sources")
        sources_seconds = time.perf_counter() - started
        engine = sync_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"CREATE TABLE {_CLONES} (source_workflow VARCHAR(255), "
                    "source_session VARCHAR(255), suffix VARCHAR(32), shift_ms BIGINT)"
                )
            )
            created: dict[str, int] = dict(
                conn.execute(
                    sa.text(
                        f"SELECT workflow_uuid, created_at FROM {_name(url, 'workflow_status')} "
                        "WHERE workflow_uuid IN :ids"
                    ).bindparams(sa.bindparam("ids", expanding=True)),
                    {"ids": list(source_sessions)},
                ).all()
            )
        statements = _copy_statements(url, engine)
        ordered = sorted(source_sessions.items())
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days)
        start_ms = int(start.timestamp() * 1000)
        spacing_ms = _DAY_MS // per_day
        task = progress.add_task(f"{kind}: steady gc, {runs:,} runs", total=days)
        samples: list[dict[str, Any]] = []
        passes: list[dict[str, Any]] = []
        copy_seconds = vacuum_seconds = 0.0
        every = max(1, days // 10)
        for day in range(days):
            copies = []
            for k in range(per_day):
                n = day * per_day + k
                workflow_id, session = ordered[n % len(ordered)]
                # Half a spacing into its slot: no copy ends on a pass's cutoff.
                at = start_ms + day * _DAY_MS + k * spacing_ms + spacing_ms // 2
                copies.append(
                    {
                        "source_workflow": workflow_id,
                        "source_session": session,
                        "suffix": f"-c{n}",
                        "shift_ms": at - int(created[workflow_id]),
                    }
                )
            began = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        f"INSERT INTO {_CLONES} VALUES "
                        "(:source_workflow, :source_session, :suffix, :shift_ms)"
                    ),
                    copies,
                )
                for statement in statements:
                    conn.execute(sa.text(statement))
                conn.execute(sa.text(f"DELETE FROM {_CLONES}"))
            copy_seconds += time.perf_counter() - began
            began = time.perf_counter()
            report = await timestep.collect_garbage(
                policy=POLICY, now=start + timedelta(days=day + 1)
            )
            seconds = time.perf_counter() - began
            expected = per_day if day >= KEPT_DAYS else 0
            assert report.runs == expected and report.skipped == 0, (day, report.to_json())
            passes.append(
                {
                    "day": day + 1,
                    "runs": report.runs,
                    "sessions": report.sessions,
                    "seconds": round(seconds, 3),
                }
            )
            vacuum_seconds += _vacuum(url, engine)
            if (day + 1) % every == 0 or day + 1 in (1, KEPT_DAYS, KEPT_DAYS + 1):
                samples.append(
                    {"day": day + 1, "runs_made": (day + 1) * per_day, **_sizes(url, engine)}
                )
            progress.advance(task)
        engine.dispose()
    deleting = [p for p in passes if p["runs"]]
    deleted = sum(p["runs"] for p in deleting)
    idle = [p["seconds"] for p in passes if not p["runs"]]
    gc_seconds = sum(p["seconds"] for p in deleting)
    return {
        "runs": per_day * days,
        "days": days,
        "runs_per_day": per_day,
        "policy": POLICY,
        "sources": sources,
        "sources_seconds": round(sources_seconds, 1),
        "copy_seconds": round(copy_seconds, 1),
        "vacuum_seconds": round(vacuum_seconds, 1),
        "runs_deleted": deleted,
        "gc_seconds": round(gc_seconds, 1),
        "gc_seconds_per_10k_runs": round(gc_seconds * 10_000 / deleted, 1) if deleted else None,
        "gc_pass_seconds_median": (
            round(statistics.median(p["seconds"] for p in deleting), 3) if deleting else None
        ),
        "gc_pass_seconds_max": max((p["seconds"] for p in deleting), default=None),
        "idle_pass_seconds_mean": round(sum(idle) / len(idle), 3) if idle else None,
        "sessions_deleted": sum(p["sessions"] for p in passes),
        "passes": passes,
        "samples": samples,
    }
