"""Durable workflows: the agent run, registered with DBOS at import (before launch)."""

from ._agent_run import (
    AGENT_RUN_WORKFLOW,
    RunRequest,
    RunSummary,
    agent_run_workflow,
    expect_live_result,
    get_model_provider,
    set_model_provider,
    take_live_result,
)
from ._approvals import APPROVALS_EVENT, DECISION_TOPIC, ApprovalPolicy, Decision, PendingApproval
from ._scheduled import SCHEDULED_RUN_WORKFLOW, ScheduleContext, scheduled_agent_run
from ._status import request_of, time_of

__all__ = [
    "SCHEDULED_RUN_WORKFLOW",
    "ScheduleContext",
    "scheduled_agent_run",
    "APPROVALS_EVENT",
    "DECISION_TOPIC",
    "ApprovalPolicy",
    "Decision",
    "PendingApproval",
    "AGENT_RUN_WORKFLOW",
    "RunRequest",
    "RunSummary",
    "agent_run_workflow",
    "expect_live_result",
    "get_model_provider",
    "set_model_provider",
    "take_live_result",
    "request_of",
    "time_of",
]
