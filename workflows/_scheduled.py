"""The workflow a schedule fires: one agent run per fire time.

DBOS gives each fire a deterministic workflow id (``sched-<name>-<time>``), so a fire runs once
however many workers share the database; the agent run is a child workflow of it, as durable as
any other run.
"""

from __future__ import annotations

from datetime import datetime

from dbos import DBOS, SetWorkflowAttributes

from timestep._core.protocol import (
    SCHEDULED_RUN_WORKFLOW,
    RunRequest,
    RunSummary,
    ScheduleContext,
)
from timestep._core.runtime import budgets_in_force

from ._agent_run import agent_run_workflow

__all__ = ["scheduled_agent_run"]


@DBOS.workflow(name=SCHEDULED_RUN_WORKFLOW)
async def scheduled_agent_run(scheduled_at: datetime, context: ScheduleContext) -> RunSummary:
    # A fresh conversation per fire is keyed by the fire's own (deterministic) workflow id.
    shared = context["session"] == "shared"
    session_id = context["session_id"] if shared else DBOS.workflow_id
    request: RunRequest = {
        "agent": context["agent"],
        "agent_ref": context.get("agent_ref"),
        "input": context["input"],
        "session_id": session_id,
        "max_turns": context.get("max_turns"),
        "stream": False,
        "started_ns": int(scheduled_at.timestamp() * 1_000_000_000),
        # Read, not a step: a replay finds the child already started with its recorded input.
        "check_budgets": await budgets_in_force(),
    }
    # A child inherits no attributes: the run's own, as run_agent gives them, so listings
    # filtered by agent or session find scheduled runs in the database too.
    with SetWorkflowAttributes({"agent": context["agent"], "session_id": session_id}):
        return await agent_run_workflow(request)
