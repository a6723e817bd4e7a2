"""Garbage collection of ended runs and idle sessions, by a ``RetentionPolicy``.

One pass deletes, in bounded batches (each its own short transactions):

- the DBOS workflows of ended runs older than the policy (agent runs, schedule fires, earlier
  retention passes, with their child workflows: provider permits, a fire's run), through
  DBOS's own ``delete_workflows``, which removes their inputs, outputs, step outputs, and by
  cascade their streams, events and messages;
- Timestep's rows of those runs: tool calls, approval decisions, RunState snapshots (the
  snapshots a run saved while it waited for decisions among them), and usage, which is first
  added to ``timestep_usage_daily`` (per day, agent and model) so totals survive;
- with a ``sessions`` age, the items and states of sessions idle for longer than it;
- the ledger's rows that no token limit, rate limit or budget can count any more (whatever
  the policy): a rate slot once it is free; a provider's word on its limits once its resets
  have passed; a model call's row once its reservation has expired and it was reserved
  before the current budget periods began (the UTC month, as ``ledger.scope_spend`` counts
  them) and ``MAX_BLOCK_SECONDS`` ago, when its run goes (in the run's batch) or, if the run
  went earlier (its rows were of the month then), by a sweep of the rows whose run no longer
  exists; the lock row of a budget of one run (``budget:run:<id>``, ``ledger.admit``'s
  ``timestep_ledger_locks``) with its run, or by a sweep of those whose run no longer exists
  (an admission creates its lock row again if it needs one: the row holds nothing but a
  counter).

It never deletes a workflow that is not ended (PENDING, ENQUEUED, DELAYED), a run whose
parent or any of whose children is still active, a session's newest state when it is an
interrupted one that a caller saved (its approvals may still be answered and the run resumed
from it; a waiting run's own snapshot is the run's and goes with it), a session that a live
run uses or that has been active within the policy, or a ledger row that a process whose
clock is up to ``LEDGER_CLOCK_MARGIN_SECONDS`` behind could still count. A pass that dies
half-way is safe to repeat: Timestep's rows go first, each batch in one transaction, then
DBOS's, so the next pass finds the same runs again and has nothing left to add twice.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from dbos import WorkflowStatus
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .ledger import BUDGET_PERIODS, WAIT_ABANDONED_SECONDS, period_start
from .protocol import (
    AGENT_RUN_WORKFLOW,
    RETENTION_WORKFLOW,
    SCHEDULED_RUN_WORKFLOW,
    WAIT_SNAPSHOT_MARK,
    request_of,
)
from .provider_feedback import MAX_BLOCK_SECONDS
from .retention_policy import STATUS_GROUPS, RetentionPolicy
from .tables import (
    decisions_table,
    ledger_locks_table,
    ledger_waits_table,
    model_calls_table,
    provider_feedback_table,
    rate_slots_table,
    run_states_table,
    session_items_table,
    step_retries_table,
    tool_calls_table,
    usage_daily_table,
    usage_table,
)

__all__ = [
    "ACTIVE_STATUSES",
    "GC_ROOT_WORKFLOWS",
    "LEDGER_CLOCK_MARGIN_SECONDS",
    "LEDGER_PART",
    "GcReport",
    "collect_garbage",
    "gc_batch",
    "gc_ledger_batch",
    "gc_run_batch",
    "gc_session_batch",
]

ACTIVE_STATUSES = ("PENDING", "ENQUEUED", "DELAYED")

GC_ROOT_WORKFLOWS = (AGENT_RUN_WORKFLOW, SCHEDULED_RUN_WORKFLOW, RETENTION_WORKFLOW)
"""The workflows a pass looks for; their children (permits, a fire's run) go with them."""

LEDGER_PART = "ledger"
"""The pass's last part, whatever the policy: the ledger's rows nothing counts any more."""

LEDGER_CLOCK_MARGIN_SECONDS = 60.0
"""A ledger row is kept this long after it stops counting: the processes compare its epoch
seconds by their own clocks (the rate permits' own clean-up keeps the same minute)."""

_LEDGER_TABLES = (
    rate_slots_table,
    provider_feedback_table,
    ledger_waits_table,
    model_calls_table,
    ledger_locks_table,
)
_RUN_LOCK_PREFIX = "budget:run:"
"""The lock rows of budgets of one run: nothing but a counter, gone with their run. A
provider's lock row holds its 429 back-off, and a budget's of another scope serves many runs:
both stay."""

_DAILY_SUMS = ("requests", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")


class WorkflowSystem(Protocol):
    """What a pass needs of DBOS: ``DBOS`` in a worker, a ``DBOSClient`` elsewhere."""

    async def list_workflows_async(self, **filters: Any) -> list[WorkflowStatus]: ...

    async def delete_workflows_async(
        self, workflow_ids: list[str], *, delete_children: bool = False
    ) -> None: ...


@dataclass
class GcReport:
    """What a garbage-collection pass deleted (or, dry, would delete)."""

    runs: int = 0
    """Ended runs (top-level workflows) deleted, with their children."""
    workflows: int = 0
    """DBOS workflows deleted: the runs and their children."""
    skipped: int = 0
    """Ended runs old enough but kept: a parent or child still active."""
    sessions: int = 0
    """Idle sessions whose items were deleted."""
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Rows deleted per table (DBOS's and Timestep's)."""
    bytes: int = 0
    """Bytes of the stored payloads deleted (inputs, outputs, step outputs, streams, events,
    messages, states, session items, tool arguments): what the rows held, before any
    database overhead; the database reuses the space (Postgres after its autovacuum)."""
    ledger_bytes: int = 0
    """Bytes of the ledger's rows deleted (model calls, rate slots, provider feedback, the lock
    rows of runs' budgets): their text plus 8 bytes per number (4 per integer, 1 per flag),
    before any database overhead."""
    dry_run: bool = False
    """Whether the pass only counted."""

    def add(self, other: dict[str, Any]) -> None:
        """Add a batch's counts to the totals.

        Args:
            other: Counts with this report's keys (``to_json``'s form); missing ones are 0.
        """
        self.runs += other.get("runs", 0)
        self.workflows += other.get("workflows", 0)
        self.skipped += other.get("skipped", 0)
        self.sessions += other.get("sessions", 0)
        self.bytes += other.get("bytes", 0)
        self.ledger_bytes += other.get("ledger_bytes", 0)
        for table, count in (other.get("rows") or {}).items():
            self.rows[table] += count

    def to_json(self) -> dict[str, Any]:
        """The report as JSON.

        Returns:
            Its fields by name, ``rows`` as a plain dict.
        """
        return {
            "runs": self.runs,
            "workflows": self.workflows,
            "skipped": self.skipped,
            "sessions": self.sessions,
            "rows": dict(self.rows),
            "bytes": self.bytes,
            "ledger_bytes": self.ledger_bytes,
            "dry_run": self.dry_run,
        }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _ids(statuses: Sequence[WorkflowStatus]) -> list[str]:
    return [s.workflow_id for s in statuses]


async def _list(system: WorkflowSystem, **filters: Any) -> list[WorkflowStatus]:
    return await system.list_workflows_async(load_input=False, load_output=False, **filters)


async def gc_run_batch(
    system: WorkflowSystem,
    engine: AsyncEngine,
    *,
    statuses: Sequence[str],
    cutoff: datetime,
    now: datetime,
    cursor: dict[str, Any] | None,
    batch_size: int,
    dry_run: bool,
    dbos_schema: str | None,
) -> dict[str, Any]:
    """One batch of ended runs (``statuses``) that ended before ``cutoff``, oldest first; the
    rows of their model calls go too if ``_spent_calls`` at ``now`` says so, and the lock rows
    of their own budgets (``_RUN_LOCK_PREFIX``).

    Returns the counts and the ``cursor`` to pass next (``done`` when none are left). The
    cursor walks the runs by creation time, so runs kept (skipped) are not read again."""
    cursor = cursor or {"created_ms": 0, "seen": []}
    found = await _list(
        system,
        status=list(statuses),
        name=list(GC_ROOT_WORKFLOWS),
        completed_before=cutoff.isoformat(),
        start_time=_iso(cursor["created_ms"]) if cursor["created_ms"] else None,
        sort_desc=False,
        limit=batch_size,
    )
    seen = set(cursor["seen"])
    batch = [s for s in found if s.workflow_id not in seen]
    if not batch:
        return {"done": True, "cursor": cursor}
    last_ms = max(int(s.created_at or 0) for s in batch)
    next_cursor = {
        "created_ms": last_ms,
        "seen": [s.workflow_id for s in found if int(s.created_at or 0) == last_ms],
    }
    # A run started by another workflow goes with its parent while the parent exists.
    parents = sorted({s.parent_workflow_id for s in batch if s.parent_workflow_id})
    existing = set(_ids(await _list(system, workflow_ids=parents))) if parents else set()
    roots = [s for s in batch if s.parent_workflow_id not in existing]
    skipped = len(batch) - len(roots)
    delete: list[str] = []
    runs = 0
    for root in roots:
        tree = await _descendants(system, root.workflow_id)
        if any(s.status in ACTIVE_STATUSES for s in tree):
            skipped += 1
            continue
        runs += 1
        delete.append(root.workflow_id)
        delete.extend(_ids(tree))
    result: dict[str, Any] = {
        "done": len(found) < batch_size,
        "cursor": next_cursor,
        "runs": runs,
        "workflows": len(delete),
        "skipped": skipped,
        "rows": {},
        "bytes": 0,
        "ledger_bytes": 0,
    }
    if not delete:
        return result
    m, locks = model_calls_table, ledger_locks_table
    spent = sa.and_(m.c.workflow_id.in_(delete), _spent_calls(now))
    run_locks = locks.c.key.in_([_RUN_LOCK_PREFIX + workflow_id for workflow_id in delete])
    async with engine.begin() as conn:
        rows, size = await _delete_run_rows(conn, delete, dry_run=dry_run)
        rows[m.name], ledger_size = await _delete_rows(conn, m, spent, dry_run=dry_run)
        count, lock_size = await _delete_rows(conn, locks, run_locks, dry_run=dry_run)
        if count:
            rows[locks.name], ledger_size = count, ledger_size + lock_size
        dbos_rows, dbos_size = await _dbos_payloads(conn, delete, dbos_schema)
    rows.update(dbos_rows)
    result["rows"], result["bytes"] = rows, size + dbos_size
    result["ledger_bytes"] = ledger_size
    if not dry_run:
        await system.delete_workflows_async(delete, delete_children=False)
    return result


async def _descendants(system: WorkflowSystem, workflow_id: str) -> list[WorkflowStatus]:
    found: list[WorkflowStatus] = []
    frontier = [workflow_id]
    seen = {workflow_id}
    while frontier:
        children = [
            s for s in await _list(system, parent_workflow_id=frontier) if s.workflow_id not in seen
        ]
        seen.update(_ids(children))
        found.extend(children)
        frontier = _ids(children)
    return found


def _length(column: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.func.length(column)), 0)


async def _delete_run_rows(
    conn: AsyncConnection, workflow_ids: list[str], *, dry_run: bool
) -> tuple[dict[str, int], int]:
    """Timestep's rows of deleted runs: usage (summed into the daily table first), tool
    calls, decisions, step retries, and states, except a session's newest state when it is an
    interrupted one a caller saved (a waiting run's own snapshot goes with the run)."""
    rows: dict[str, int] = {}
    size = 0
    u = usage_table
    usage = (await conn.execute(sa.select(u).where(u.c.workflow_id.in_(workflow_ids)))).all()
    rows[u.name] = len(usage)
    if usage and not dry_run:
        await _add_daily(conn, usage)
        await conn.execute(sa.delete(u).where(u.c.workflow_id.in_(workflow_ids)))

    t = tool_calls_table
    count, calls_size = (
        await conn.execute(
            sa.select(sa.func.count(), _length(t.c.arguments) + _length(t.c.decision)).where(
                t.c.workflow_id.in_(workflow_ids)
            )
        )
    ).one()
    rows[t.name], size = int(count), size + int(calls_size)
    if count and not dry_run:
        await conn.execute(sa.delete(t).where(t.c.workflow_id.in_(workflow_ids)))

    r = step_retries_table
    rows[r.name], _ = await _delete_rows(
        conn, r, r.c.workflow_id.in_(workflow_ids), dry_run=dry_run
    )
    d = decisions_table
    rows[d.name], decisions_size = await _delete_rows(
        conn, d, d.c.workflow_id.in_(workflow_ids), dry_run=dry_run
    )
    size += decisions_size

    s = run_states_table
    newest = sa.select(sa.func.max(s.c.seq)).group_by(s.c.session_id).scalar_subquery()
    kept = sa.and_(
        s.c.seq.in_(newest), s.c.state_type == "interrupted", sa.not_(_is_wait_snapshot(s))
    )
    where = sa.and_(s.c.workflow_id.in_(workflow_ids), sa.not_(kept))
    count, states_size = (
        await conn.execute(
            sa.select(sa.func.count(), _length(s.c.payload) + _length(s.c.payload_typescript))
            .select_from(s)
            .where(where)
        )
    ).one()
    rows[s.name], size = int(count), size + int(states_size)
    if count and not dry_run:
        await conn.execute(sa.delete(s).where(where))
    return rows, size


def _is_wait_snapshot(s: sa.Table) -> Any:
    """Whether a state row is a snapshot its run saved while it waited (``wait_snapshot_id``):
    compared, not matched with LIKE, so ids holding ``%`` or ``_`` mean nothing more."""
    prefix = s.c.workflow_id + WAIT_SNAPSHOT_MARK
    return sa.func.substr(s.c.state_id, 1, sa.func.length(prefix)) == prefix


async def _add_daily(conn: AsyncConnection, usage: Sequence[Any]) -> None:
    """Add usage rows to their (day, agent, model) sums, in the caller's transaction."""
    sums: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in usage:
        created = row.created_at
        day = (created.astimezone(UTC) if created.tzinfo else created).date().isoformat()
        key = (day, row.agent_name or "", row.model or "")
        entry = sums.setdefault(
            key,
            {
                "day": key[0],
                "agent_name": key[1],
                "model": key[2],
                **dict.fromkeys(_DAILY_SUMS, 0),
                "cost_usd": 0.0,
                "priced_rows": 0,
            },
        )
        for name in _DAILY_SUMS:
            entry[name] += int(getattr(row, name) or 0)
        if row.cost_usd is not None:
            entry["cost_usd"] += float(row.cost_usd)
            entry["priced_rows"] += 1
    d = usage_daily_table
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(d)
    added = (*_DAILY_SUMS, "cost_usd", "priced_rows")
    statement = statement.on_conflict_do_update(
        index_elements=["day", "agent_name", "model"],
        set_={name: d.c[name] + statement.excluded[name] for name in added},
    )
    await conn.execute(statement, list(sums.values()))


def _ledger_horizon(now: datetime) -> float:
    """The epoch second before which a ledger row counts for nothing: ``now``, or the clock if
    it is earlier (a pass dated ahead never deletes what the limiters, on the clock, still
    count), less ``LEDGER_CLOCK_MARGIN_SECONDS``."""
    return min(now.timestamp(), time.time()) - LEDGER_CLOCK_MARGIN_SECONDS


def _spent_calls(now: datetime) -> Any:
    """Model calls that count for no limit and no budget any more, whatever their run: their
    reservation expired (a token limit holds only the rows not yet expired), they were
    reserved before the oldest budget period under way began (``scope_spend``'s
    ``period_start``: the UTC month) and more than ``MAX_BLOCK_SECONDS`` ago (a provider's
    word counts the calls reserved after it while one of its resets, at most that far ahead,
    has not passed). A run's ``per="run"`` budget counts its rows with no time bound: they
    go only with their run, or once it no longer exists."""
    horizon = _ledger_horizon(now)
    starts = [period_start(per, horizon) for per in BUDGET_PERIODS]
    m = model_calls_table
    return sa.and_(
        m.c.expires_at < horizon,
        m.c.reserved_at < min(start for start in starts if start is not None),
        m.c.reserved_at < horizon - MAX_BLOCK_SECONDS,
    )


def _dead_ledger_rows(table: sa.Table, now: datetime) -> Any:
    """A rate slot once it is free (``_slot_free_at`` reads only the slots with ``free_at``
    ahead); a provider's word on its limits once it was observed and both its resets passed
    (``_provider_room`` obeys a row only while a reset is ahead); a waiting call's place in
    line once its call gave it up."""
    horizon = _ledger_horizon(now)
    if table is rate_slots_table:
        return table.c.free_at < horizon
    if table is ledger_waits_table:  # a place in line its call gave up (ledger._ahead)
        return table.c.look_at < horizon - WAIT_ABANDONED_SECONDS
    return sa.and_(
        table.c.observed_at < horizon,
        *(
            sa.or_(table.c[reset].is_(None), table.c[reset] < horizon)
            for reset in ("requests_reset_at", "tokens_reset_at")
        ),
    )


def _row_bytes(table: sa.Table) -> Any:
    """The summed size of the rows' values: text by its length, numbers by their width."""
    widths = {sa.Integer: 4, sa.Boolean: 1}
    parts: list[Any] = []
    for column in table.columns:
        if isinstance(column.type, sa.String):  # Text too
            parts.append(sa.func.coalesce(sa.func.length(column), 0))
        else:
            width = next((n for kind, n in widths.items() if type(column.type) is kind), 8)
            parts.append(sa.literal_column(str(width)))
    return sa.func.coalesce(sa.func.sum(sum(parts[1:], parts[0])), 0)


async def _delete_rows(
    conn: AsyncConnection, table: sa.Table, where: Any, *, dry_run: bool
) -> tuple[int, int]:
    """Count (and, not dry, delete) ``table``'s rows ``where`` holds: the rows and their bytes.
    The delete checks ``where`` again, so a row written since is kept."""
    count, size = (
        await conn.execute(sa.select(sa.func.count(), _row_bytes(table)).where(where))
    ).one()
    if count and not dry_run:
        await conn.execute(sa.delete(table).where(where))
    return int(count), int(size)


def _dbos_tables(schema: str | None) -> dict[str, tuple[sa.Table, str, str]]:
    """DBOS's tables that hold a workflow's payloads: (table, its id column, payload column)."""
    meta = sa.MetaData(schema=schema)

    def table(name: str, id_column: str, payload: str) -> tuple[sa.Table, str, str]:
        return (
            sa.Table(name, meta, sa.Column(id_column, sa.Text), sa.Column(payload, sa.Text)),
            id_column,
            payload,
        )

    return {
        "workflow_status": table("workflow_status", "workflow_uuid", "output"),
        "workflow_input": table("workflow_input", "workflow_uuid", "inputs"),
        "workflow_output": table("workflow_output", "workflow_uuid", "output"),
        "operation_outputs": table("operation_outputs", "workflow_uuid", "output"),
        "streams": table("streams", "workflow_uuid", "value"),
        "workflow_events": table("workflow_events", "workflow_uuid", "value"),
        "notifications": table("notifications", "destination_uuid", "message"),
    }


async def _dbos_payloads(
    conn: AsyncConnection, workflow_ids: list[str], schema: str | None
) -> tuple[dict[str, int], int]:
    """How many rows of DBOS's tables belong to these workflows, and their payloads' bytes
    (read before DBOS deletes them; read-only)."""
    rows: dict[str, int] = {}
    size = 0
    for name, (table, id_column, payload) in _dbos_tables(schema).items():
        count, length = (
            await conn.execute(
                sa.select(sa.func.count(), _length(table.c[payload])).where(
                    table.c[id_column].in_(workflow_ids)
                )
            )
        ).one()
        rows[f"dbos.{name}"] = int(count)
        size += int(length)
    return rows, size


async def gc_session_batch(
    system: WorkflowSystem,
    engine: AsyncEngine,
    *,
    cutoff: datetime,
    cursor: str | None,
    batch_size: int,
    dry_run: bool,
) -> dict[str, Any]:
    """One batch of sessions idle since before ``cutoff``: their items and states go.

    A session is live (kept) while a run that is not ended uses it, while it has an item or a
    state newer than the cutoff, or while its newest state is an interrupted one a caller saved
    (a waiting run's own snapshot keeps the session only while the run is not ended, as its
    use of the session does)."""
    i, s = session_items_table, run_states_table
    query = (
        sa.select(i.c.session_id)
        .group_by(i.c.session_id)
        .having(sa.func.max(i.c.created_at) < cutoff)
        .order_by(i.c.session_id)
        .limit(batch_size)
    )
    if cursor is not None:
        query = query.where(i.c.session_id > cursor)
    async with engine.connect() as conn:
        candidates = list((await conn.execute(query)).scalars())
    if not candidates:
        return {"done": True, "cursor": cursor}
    active = await _list_with_input(
        system, status=list(ACTIVE_STATUSES), name=list(GC_ROOT_WORKFLOWS)
    )
    in_use = {request_of(status).get("session_id") for status in active}
    newest = (
        sa.select(s.c.session_id, sa.func.max(s.c.seq).label("seq"))
        .where(s.c.session_id.in_(candidates))
        .group_by(s.c.session_id)
        .subquery()
    )
    async with engine.connect() as conn:
        recent = set(
            (
                await conn.execute(
                    sa.select(s.c.session_id)
                    .where(s.c.session_id.in_(candidates), s.c.created_at >= cutoff)
                    .distinct()
                )
            ).scalars()
        )
        waiting = set(
            (
                await conn.execute(
                    sa.select(s.c.session_id)
                    .join(
                        newest,
                        sa.and_(s.c.session_id == newest.c.session_id, s.c.seq == newest.c.seq),
                    )
                    .where(
                        s.c.state_type == "interrupted",
                        sa.or_(s.c.workflow_id.is_(None), sa.not_(_is_wait_snapshot(s))),
                    )
                )
            ).scalars()
        )
    expired = [sid for sid in candidates if sid not in in_use | recent | waiting]
    result: dict[str, Any] = {
        "done": len(candidates) < batch_size,
        "cursor": candidates[-1],
        "sessions": len(expired),
        "rows": {},
        "bytes": 0,
    }
    if not expired:
        return result
    async with engine.begin() as conn:
        size = 0
        rows: dict[str, int] = {}
        for table, payload in ((i, i.c.item), (s, s.c.payload)):
            count, length = (
                await conn.execute(
                    sa.select(sa.func.count(), _length(payload)).where(
                        table.c.session_id.in_(expired)
                    )
                )
            ).one()
            rows[table.name], size = int(count), size + int(length)
            if count and not dry_run:
                await conn.execute(sa.delete(table).where(table.c.session_id.in_(expired)))
    result["rows"], result["bytes"] = rows, size
    return result


async def gc_ledger_batch(
    system: WorkflowSystem,
    engine: AsyncEngine,
    *,
    now: datetime,
    cursor: dict[str, Any] | None,
    batch_size: int,
    dry_run: bool,
) -> dict[str, Any]:
    """One batch of the ledger's dead rows at ``now``, table by table: rate slots and provider
    feedback (``_dead_ledger_rows``), then the model calls ``_spent_calls`` says are spent
    whose run no longer exists (a run deleted with rows of the current month leaves them),
    then the lock rows of one run's budgets (``_RUN_LOCK_PREFIX``) whose run no longer exists.
    A lock row deleted while an admission holds it waits for the admission's commit (Postgres's
    row lock, SQLite's write lock), and the next admission creates it again.

    Returns the counts and the ``cursor`` to pass next (``done`` after the last table). The
    cursor walks each table by its key (the model calls by run), so rows kept are not read
    again."""
    cursor = cursor or {"table": _LEDGER_TABLES[0].name, "after": None}
    index = [t.name for t in _LEDGER_TABLES].index(cursor["table"])
    table = _LEDGER_TABLES[index]
    if table is model_calls_table:
        key, dead = table.c.workflow_id, _spent_calls(now)
    elif table is ledger_locks_table:
        key, dead = table.c.key, table.c.key.startswith(_RUN_LOCK_PREFIX, autoescape=True)
    else:
        key, dead = table.primary_key.columns[0], _dead_ledger_rows(table, now)
    query = sa.select(key).where(dead).distinct().order_by(key).limit(batch_size)
    if cursor["after"] is not None:
        query = query.where(key > cursor["after"])
    async with engine.connect() as conn:
        found = list((await conn.execute(query)).scalars())
    last = index + 1 == len(_LEDGER_TABLES)
    if len(found) == batch_size:
        next_cursor = {"table": table.name, "after": found[-1]}
    else:  # this table is done: the next one from its start
        following = _LEDGER_TABLES[(index + 1) % len(_LEDGER_TABLES)]
        next_cursor = {"table": following.name, "after": None}
    result: dict[str, Any] = {
        "done": last and len(found) < batch_size,
        "cursor": next_cursor,
        "rows": {},
        "ledger_bytes": 0,
    }
    if table is model_calls_table and found:
        existing = set(_ids(await _list(system, workflow_ids=found)))
        found = [workflow_id for workflow_id in found if workflow_id not in existing]
    elif table is ledger_locks_table and found:
        runs = {lock: lock.removeprefix(_RUN_LOCK_PREFIX) for lock in found}
        existing = set(_ids(await _list(system, workflow_ids=list(runs.values()))))
        found = [lock for lock, workflow_id in runs.items() if workflow_id not in existing]
    if not found:
        return result
    async with engine.begin() as conn:
        count, size = await _delete_rows(
            conn, table, sa.and_(key.in_(found), dead), dry_run=dry_run
        )
    result["rows"], result["ledger_bytes"] = {table.name: count}, size
    return result


async def _list_with_input(system: WorkflowSystem, **filters: Any) -> list[WorkflowStatus]:
    return await system.list_workflows_async(load_output=False, **filters)


Progress = Callable[[str, dict[str, Any]], None]
"""Told after each batch: the part (``finished``, ``failed``, ``cancelled``, ``sessions``,
``ledger``) and the batch's counts."""


async def gc_batch(
    system: WorkflowSystem,
    engine: AsyncEngine,
    part: str,
    age: timedelta | None,
    *,
    now: datetime,
    cursor: Any,
    batch_size: int,
    dry_run: bool,
    dbos_schema: str | None,
) -> dict[str, Any]:
    """One batch of a part of the pass (``policy_parts``) at ``now``: its counts and its
    ``cursor``, ``done`` when the part is."""
    if part == LEDGER_PART:
        return await gc_ledger_batch(
            system, engine, now=now, cursor=cursor, batch_size=batch_size, dry_run=dry_run
        )
    assert age is not None
    if part == "sessions":
        return await gc_session_batch(
            system, engine, cutoff=now - age, cursor=cursor,
            batch_size=batch_size, dry_run=dry_run,
        )  # fmt: skip
    return await gc_run_batch(
        system, engine, statuses=STATUS_GROUPS[part], cutoff=now - age, now=now,
        cursor=cursor, batch_size=batch_size, dry_run=dry_run, dbos_schema=dbos_schema,
    )  # fmt: skip


async def collect_garbage(
    system: WorkflowSystem,
    engine: AsyncEngine,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    batch_size: int = 500,
    dry_run: bool = False,
    dbos_schema: str | None = None,
    progress: Progress | None = None,
) -> GcReport:
    """One whole pass of ``policy`` (outside a workflow: ``timestep gc``)."""
    now = now or datetime.now(UTC)
    report = GcReport(dry_run=dry_run)
    for part, age in policy_parts(policy):
        cursor: Any = None
        while True:
            batch = await gc_batch(
                system, engine, part, age, now=now, cursor=cursor,
                batch_size=batch_size, dry_run=dry_run, dbos_schema=dbos_schema,
            )  # fmt: skip
            report.add(batch)
            if progress is not None:
                progress(part, batch)
            cursor = batch["cursor"]
            if batch["done"]:
                break
    return report


def policy_parts(policy: RetentionPolicy) -> list[tuple[str, timedelta | None]]:
    """The pass's parts and their ages: the policy's parts that delete anything, runs first (a
    session's last run goes before its items are judged), then the ledger (no age; after the
    runs, whose batches delete their own model calls first)."""
    parts = [(name, getattr(policy, name)) for name in (*STATUS_GROUPS, "sessions")]
    return [(name, age) for name, age in parts if age is not None] + [(LEDGER_PART, None)]
