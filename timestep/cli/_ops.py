"""The rows and records the CLI prints, from the client layer (a ``DBOSClient`` here: the CLI
never launches DBOS to inspect, so it never executes a worker's runs)."""

from __future__ import annotations

import dataclasses
from typing import Any

from dbos import WorkflowStatus

from timestep._client.approvals import get_pending_approvals
from timestep._client.budgets import get_budgets
from timestep._client.inspection import list_run_steps, list_runs, require_run, run_error
from timestep._client.usage import get_usage
from timestep._core.protocol import request_of

__all__ = ["run_rows", "show_run"]


def _row(status: WorkflowStatus) -> dict[str, Any]:
    return {
        "workflow_id": status.workflow_id,
        "status": status.status,
        "agent": request_of(status).get("agent"),
        "created_at": status.created_at,
        "updated_at": status.updated_at,
    }


async def run_rows(*, status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    return [_row(s) for s in await list_runs(status=status, limit=limit)]


async def show_run(workflow_id: str) -> dict[str, Any]:
    status = await require_run(workflow_id)
    info = _row(status)
    info["steps"] = await list_run_steps(workflow_id)
    output = status.output if status.status == "SUCCESS" else None
    info["final_output"] = output.get("final_output") if isinstance(output, dict) else None
    info["error"] = run_error(status)
    info["pending_approvals"] = (
        await get_pending_approvals(workflow_id) if status.status == "PENDING" else []
    )
    return info


async def usage_report(
    *,
    workflow_id: str | None = None,
    agent_name: str | None = None,
    session_id: str | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """``get_usage`` with the filters given, and every budget with its spend."""
    summary = await get_usage(
        workflow_id=workflow_id, agent_name=agent_name, session_id=session_id, tag=tag
    )
    return {
        "usage": dataclasses.asdict(summary),
        "budgets": [dataclasses.asdict(budget) for budget in await get_budgets()],
    }
