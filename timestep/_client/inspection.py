"""Runs by workflow id, from any process: their status, steps, RunState; cancel, resume, fork.

Everything here reaches DBOS through ``system()``, so it works from a process that is not a
worker (the CLI, the HTTP API, a script) and never recovers or executes a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from dbos import WorkflowStatus

from timestep._core.error_records import describe_error, is_permanent
from timestep._core.fingerprint import describe_changes, fingerprint
from timestep._core.process import process_state
from timestep._core.protocol import AGENT_RUN_WORKFLOW, SCHEDULED_RUN_WORKFLOW, request_of, time_of
from timestep._core.retries import retries_of
from timestep._core.runtime import current_database, tables_engine
from timestep._core.tables import run_states_table
from timestep.errors import RunNotFoundError, RunNotResumableError

from .system import system

__all__ = [
    "RUN_WORKFLOWS",
    "RunInfo",
    "RunsPage",
    "cancel_run",
    "find_run",
    "find_workflow",
    "fork_run",
    "get_run",
    "list_run_steps",
    "list_runs",
    "list_runs_page",
    "list_stale_runs",
    "require_run",
    "resume_run",
    "run_error",
    "run_state_json",
]


@dataclass(frozen=True)
class RunInfo:
    """A run's status, as ``get_run`` gives it.

    Attributes:
        workflow_id: The run's workflow id.
        status: DBOS's status: ``"PENDING"``, ``"ENQUEUED"``, ``"SUCCESS"``, ``"ERROR"``,
            ``"CANCELLED"``...
        agent_name: The name of the agent the run started with.
        created_at: When the run started (UTC).
        updated_at: When its status last changed (UTC).
        error: A failed run's error as one line (``Class: message``), without secrets.
    """

    workflow_id: str
    status: str
    agent_name: str | None
    created_at: datetime | None
    updated_at: datetime | None
    error: str | None


RUN_WORKFLOWS = (AGENT_RUN_WORKFLOW, SCHEDULED_RUN_WORKFLOW)
"""The workflows that are runs: an agent run, or a schedule's fire (whose child is one)."""


async def find_workflow(workflow_id: str) -> WorkflowStatus | None:
    """Any workflow's DBOS status by id (a run, a fire, a permit...), from any process."""
    found = await system().list_workflows_async(workflow_ids=[workflow_id])
    return found[0] if found else None


async def find_run(workflow_id: str) -> WorkflowStatus | None:
    """A run's DBOS status by workflow id, from any process; None if no run has it."""
    status = await find_workflow(workflow_id)
    return status if status is not None and status.name in RUN_WORKFLOWS else None


async def require_run(workflow_id: str) -> WorkflowStatus:
    """``find_run``, or ``RunNotFoundError``."""
    status = await find_run(workflow_id)
    if status is None:
        raise RunNotFoundError(f"no run has workflow id {workflow_id!r}")
    return status


async def run_state_json(status: WorkflowStatus) -> str | None:
    """The RunState (Python format) of an interrupted run: an ended one's from its output, a
    waiting one's newest snapshot; None for any other run."""
    if status.status == "SUCCESS":
        output = status.output if isinstance(status.output, dict) else {}
        state_json: str | None = output.get("state")
        return state_json
    if status.status != "PENDING":
        return None
    t = run_states_table
    query = (
        sa.select(t.c.payload)
        .where(t.c.workflow_id == status.workflow_id, t.c.format == "python")
        .order_by(t.c.seq.desc())
        .limit(1)
    )
    async with (await tables_engine()).connect() as conn:
        payload: str | None = (await conn.execute(query)).scalar()
    return payload


async def get_run(workflow_id: str) -> RunInfo:
    """Status of a run by workflow id, from any process (it need not be a worker).

    Args:
        workflow_id: The run's workflow id.

    Returns:
        The run's status.

    Raises:
        RunNotFoundError: No run has this workflow id.
    """
    status = await require_run(workflow_id)
    return RunInfo(
        workflow_id=workflow_id,
        status=status.status,
        agent_name=request_of(status).get("agent"),
        created_at=time_of(status.created_at),
        updated_at=time_of(status.updated_at),
        error=run_error(status),
    )


def run_error(status: WorkflowStatus) -> str | None:
    """A failed run's error as one line (``Class: message``), secret-free; None otherwise."""
    return describe_error(status.error) if status.error is not None else None


async def list_runs(
    *, status: str | list[str] | None = None, limit: int = 20, load_output: bool = False
) -> list[WorkflowStatus]:
    """The newest agent runs first, from any process."""
    return await system().list_workflows_async(
        name=AGENT_RUN_WORKFLOW,
        status=status,
        limit=limit,
        sort_desc=True,
        load_output=load_output,
    )


@dataclass(frozen=True)
class RunsPage:
    """One page of runs, newest first: the cursor of the next (older) page (None: the last),
    that of the previous (newer) page (None: the first page has no newer one), and whether
    this is the first page (the newest runs)."""

    runs: list[WorkflowStatus]
    next_cursor: str | None
    newer_cursor: str | None = None
    first: bool = True


_Position = tuple[int, set[str]]
"""Where a listing stands: a creation time (epoch ms) and the runs already listed at it."""


def _cursor(created: int, ids: set[str]) -> str:
    """``<created_at ms>:<ids of the runs already listed that were created in that ms>``."""
    return f"{created}:" + ",".join(sorted(ids))


def _parse_cursor(cursor: str) -> _Position:
    created, _, ties = cursor.partition(":")
    if not created.isdigit():
        raise ValueError(f"invalid runs cursor {cursor!r}")
    return int(created), {t for t in ties.split(",") if t}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ceil_ms(moment: datetime) -> int:
    """The first whole millisecond at or after ``moment`` (exact: integer microseconds)."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return -(-((moment - _EPOCH) // timedelta(microseconds=1)) // 1000)


def _bound(ms: int | None) -> str | None:
    # DBOS compares start_time and end_time in whole milliseconds, inclusive: half a
    # millisecond past the bound's so float rounding never moves it (the runs already listed
    # there are skipped by id).
    if ms is None:
        return None
    return (datetime.fromtimestamp(ms / 1000, UTC) + timedelta(microseconds=500)).isoformat()


def _matches(status: WorkflowStatus, wanted: dict[str, str]) -> bool:
    request = request_of(status)
    attributes = getattr(status, "attributes", None) or {}
    return all(
        request.get(key) == value or attributes.get(key) == value for key, value in wanted.items()
    )


def _position(runs: list[WorkflowStatus], at: _Position | None = None) -> _Position:
    """The position after ``runs`` (the last is the edge): its time and the runs listed at
    it, with those of ``at`` when the listing had not moved past its time."""
    edge = runs[-1].created_at or 0
    ids = {s.workflow_id for s in runs if s.created_at == edge}
    if at is not None and at[0] == edge:
        ids |= at[1]
    return edge, ids


_SCAN_LIMIT = 5000
"""On SQLite (where DBOS cannot filter on attributes) at most this many runs are read for one
page of a filtered listing; a page may then be short, with a cursor to read on."""


@dataclass(frozen=True)
class _Query:
    status: str | list[str] | None
    wanted: dict[str, str]
    low: int | None  # the earliest creation time (ms) included
    high: int | None  # the latest included
    limit: int
    load_output: bool


async def _scan(
    query: _Query, at: _Position | None, *, ascending: bool
) -> tuple[list[WorkflowStatus], bool, _Position | None]:
    """Up to a page of runs from ``at`` on (older ones, or newer ones when ``ascending``, in
    the order read), whether more are left, and where a scan that ``_SCAN_LIMIT`` cut short
    stopped."""
    wanted, limit = query.wanted, query.limit
    in_database = not wanted or not current_database().is_sqlite
    edge, seen = at if at is not None else (None, set())
    page: list[WorkflowStatus] = []
    scanned = 0
    while True:
        batch = limit + len(seen) + 1 if in_database else max(4 * limit, 200) + len(seen)
        lower, upper = query.low, query.high
        if edge is not None and ascending:
            lower = edge if lower is None else max(lower, edge)
        elif edge is not None:
            upper = edge if upper is None else min(upper, edge)
        found = await system().list_workflows_async(
            name=AGENT_RUN_WORKFLOW,
            status=query.status,
            attributes=wanted if wanted and in_database else None,
            start_time=_bound(lower),
            end_time=_bound(upper),
            limit=batch,
            sort_desc=not ascending,
            load_output=query.load_output,
        )
        for run in found:
            if run.workflow_id in seen or (not in_database and not _matches(run, wanted)):
                continue
            if len(page) == limit:  # one more than a page: there is another
                return page, True, None
            page.append(run)
        if len(found) < batch or not found:
            return page, False, None
        # Read on (SQLite, filtered): from the last run read, skipping those read at its ms.
        edge, seen = _position(found, (edge, seen) if edge is not None else None)
        scanned += len(found)
        if scanned >= _SCAN_LIMIT:
            return page, True, (edge, seen)


async def list_runs_page(
    *,
    status: str | list[str] | None = None,
    agent: str | None = None,
    session_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    newer: str | None = None,
    limit: int = 50,
    load_output: bool = True,
) -> RunsPage:
    """A page of agent runs, newest first, paged by keyset (the creation time of the last run
    listed), so a page deep in 100,000 runs costs what the first one does: the database walks
    its ``created_at`` index from the cursor instead of counting past an offset.

    ``since`` and ``until`` bound the creation time (``since`` included, ``until`` not);
    ``cursor`` reads the page older than the one that gave it (``next_cursor``), ``newer``
    the page newer than the one that gave it (``newer_cursor``), walking the same index the
    other way; a newer page that reaches the newest runs is the first page, filled.
    ``agent`` and ``session_id`` filter on the attributes runs are started with (in the
    database on Postgres; on SQLite, which DBOS cannot filter on them, by reading on from the
    cursor). ``ValueError`` for a cursor this function did not make, or for both cursors."""
    if cursor and newer:
        raise ValueError("give a runs cursor or a newer cursor, not both")
    low = _ceil_ms(since) if since is not None else None
    high = _ceil_ms(until) - 1 if until is not None else None
    wanted = {key: value for key, value in (("agent", agent), ("session_id", session_id)) if value}
    query = _Query(status, wanted, low, high, limit, load_output)
    if newer:
        after = _parse_cursor(newer)
        found, more, stopped = await _scan(query, after, ascending=True)
        if not more:  # nothing newer than these: the first page
            return await list_runs_page(
                status=status,
                agent=agent,
                session_id=session_id,
                since=since,
                until=until,
                limit=limit,
                load_output=load_output,
            )
        onward = stopped or _position(found, after)
        runs = found[::-1]
        older = _position(runs) if runs else after
        return RunsPage(runs, _cursor(*older), _cursor(*onward), first=False)
    at = _parse_cursor(cursor) if cursor else None
    runs, more, stopped = await _scan(query, at, ascending=False)
    next_cursor = None
    if more:
        next_cursor = _cursor(*(stopped or _position(runs, at)))
    newer_cursor = None
    if at is not None and runs:
        newest = runs[0].created_at or 0
        newer_cursor = _cursor(newest, {s.workflow_id for s in runs if s.created_at == newest})
    return RunsPage(runs, next_cursor, newer_cursor, first=at is None)


async def list_run_steps(workflow_id: str, *, detail: bool = False) -> list[dict[str, Any]]:
    """A run's checkpointed steps, in order: id, name (``model:...``, ``tool:...``), outcome,
    retries (the attempts after the first: DBOS's retries of the step and the model client's
    own retries of its request; ``timestep._core.retries``). With ``detail``, also when each started and ended (epoch ms, as DBOS recorded them), its
    output and its error (one line, secret-free)."""
    steps = await system().list_workflow_steps_async(workflow_id)
    retries = await retries_of(workflow_id) if steps else {}
    rows: list[dict[str, Any]] = []
    for s in steps:
        error = s.get("error")
        row: dict[str, Any] = {
            "id": s["function_id"],
            "name": s["function_name"],
            "outcome": "error" if error is not None else "done",
            "retries": retries.get(s["function_id"], 0),
        }
        if detail:
            row.update(
                started_at_ms=s.get("started_at_epoch_ms"),
                completed_at_ms=s.get("completed_at_epoch_ms"),
                output=s.get("output"),
                error=describe_error(error) if error is not None else None,
                child_workflow_id=s.get("child_workflow_id"),
            )
        rows.append(row)
    return rows


async def cancel_run(workflow_id: str) -> None:
    """Cancel a run; it stops at its next step."""
    await system().cancel_workflow_async(workflow_id)


async def resume_run(workflow_id: str) -> None:
    """Resume a run from its last finished step; a worker executes it.

    A cancelled (or stuck) run goes on where it stopped. A failed run is rewound to the step
    that failed, which runs again: a model call that failed on a transient provider error (a
    timeout, a 5xx, a rate limit) is asked again. ``RunNotResumableError`` says why a run would
    only fail the same way: a permanent provider error (a bad key, a bad request), or a failure
    of the agent loop itself rather than of a step (fork the run with other inputs instead).
    """
    status = await require_run(workflow_id)
    if status.status != "ERROR":
        await system().resume_workflow_async(workflow_id)
        return
    failed = [s for s in await system().list_workflow_steps_async(workflow_id) if s["error"]]
    if not failed:
        raise RunNotResumableError(
            f"run {workflow_id!r} failed in its agent loop, not in a step "
            f"({run_error(status)}); resuming would fail the same way: fork it instead"
        )
    step = failed[-1]
    error = step["error"]
    if isinstance(error, BaseException) and is_permanent(error):
        raise RunNotResumableError(
            f"run {workflow_id!r} failed on a permanent error in step {step['function_id']} "
            f"({step['function_name']}: {describe_error(error)}); asking again would fail the "
            "same way: fix the cause (a key, the request) and fork the run"
        )
    await system().rewind_workflow_async(workflow_id, start_step=step["function_id"])


async def fork_run(workflow_id: str, start_step: int = 1) -> str:
    """A new run that replays ``workflow_id``'s steps before ``start_step`` and executes the
    rest; returns its workflow id."""
    handle = await system().fork_workflow_async(workflow_id, start_step)
    return handle.get_workflow_id()


async def list_stale_runs(
    *, status: list[str] | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Runs not yet ended (by default) that started on another definition of their agent
    than this process has (its registered agents, or the ``module:attr`` the run recorded):
    each with the changes in words, as ``AgentDefinitionChangedError`` would name them.

    A run whose agent this process cannot find or build is listed with that as its change."""
    statuses = status or ["PENDING", "ENQUEUED"]
    stale: list[dict[str, Any]] = []
    for run in await list_runs(status=statuses, limit=limit):
        request = request_of(run)
        name, recorded = request.get("agent"), request.get("agent_fingerprint")
        if not name or not recorded:
            continue  # older runs recorded no fingerprint
        try:
            agent = process_state().agents.resolve(name, request.get("agent_ref"))
        except Exception as exc:
            changes = [f"agent {name!r} is not available here ({type(exc).__name__}: {exc})"]
        else:
            changes = describe_changes(recorded, fingerprint(agent))
        if changes:
            stale.append(
                {
                    "workflow_id": run.workflow_id,
                    "status": run.status,
                    "agent": name,
                    "created_at": run.created_at,
                    "application_version": run.app_version,
                    "changes": changes,
                }
            )
    return stale
