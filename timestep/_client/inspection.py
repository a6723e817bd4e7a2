"""Runs by workflow id, from any process: their status, steps, RunState; cancel, resume, fork.

Everything here reaches DBOS through ``system()``, so it works from a process that is not a
worker (the CLI, the HTTP API, a script) and never recovers or executes a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from dbos import WorkflowStatus

from timestep._core.error_records import describe_error, is_permanent
from timestep._core.fingerprint import describe_changes, fingerprint
from timestep._core.process import process_state
from timestep._core.protocol import AGENT_RUN_WORKFLOW, SCHEDULED_RUN_WORKFLOW, request_of, time_of
from timestep._core.runtime import tables_engine
from timestep._core.tables import run_states_table
from timestep.errors import RunNotFoundError, RunNotResumableError

from .system import system

__all__ = [
    "RUN_WORKFLOWS",
    "RunInfo",
    "cancel_run",
    "find_run",
    "find_workflow",
    "fork_run",
    "get_run",
    "list_run_steps",
    "list_runs",
    "list_stale_runs",
    "require_run",
    "resume_run",
    "run_error",
    "run_state_json",
]


@dataclass(frozen=True)
class RunInfo:
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
    """Status of a run by workflow id, from any process (it need not be a worker)."""
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


async def list_run_steps(workflow_id: str) -> list[dict[str, Any]]:
    """A run's checkpointed steps, in order: id, name (``model:...``, ``tool:...``), outcome."""
    steps = await system().list_workflow_steps_async(workflow_id)
    return [
        {
            "id": s["function_id"],
            "name": s["function_name"],
            "outcome": "error" if s.get("error") is not None else "done",
        }
        for s in steps
    ]


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
