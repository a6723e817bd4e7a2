"""The workflow a schedule fires: one agent run per fire time.

DBOS gives each fire a deterministic workflow id (``sched-<name>-<time>``), so a fire runs once
however many workers share the database; the agent run is a child workflow of it, as durable as
any other run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

from dbos import DBOS

from ._agent_run import RunRequest, RunSummary, agent_run_workflow

__all__ = ["SCHEDULED_RUN_WORKFLOW", "ScheduleContext", "scheduled_agent_run"]

SCHEDULED_RUN_WORKFLOW = "timestep.scheduled_agent_run"


class ScheduleContext(TypedDict):
    agent: str
    agent_ref: str | None
    input: str | list[Any]
    session: Literal["fresh", "shared"]
    session_id: str | None
    """The shared session's id (``session == "shared"``)."""
    max_turns: int | None


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
    }
    return await agent_run_workflow(request)
