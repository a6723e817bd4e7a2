"""The agent-run workflow: the SDK's ``Runner`` inside ``@DBOS.workflow``.

Its argument is plain JSON-able data (``RunRequest``), so DBOS can recover it in a fresh
process: the agent is found by name (or imported from its ``module:attr``), made durable, and
run again; finished model and tool steps replay from their checkpoints.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from agents import Agent, RunConfig, Runner, RunState
from agents.exceptions import AgentsException
from agents.models.interface import ModelProvider
from agents.result import RunResult
from agents.run import DEFAULT_MAX_TURNS
from agents.usage import serialize_usage
from dbos import DBOS
from timestep.steps import DurableModelProvider, durable_agent

from timestep._recorder import RunRecords
from timestep._registry import resolve_agent
from timestep._run_context import DurableRunContext, reset_current_run, set_current_run
from timestep._sessions import TimestepSession

from ._approvals import ApprovalPolicy, wait_for_decisions
from ._recording import record_run

__all__ = [
    "AGENT_RUN_WORKFLOW",
    "RunRequest",
    "RunSummary",
    "agent_run_workflow",
    "set_model_provider",
    "get_model_provider",
    "expect_live_result",
    "take_live_result",
]

AGENT_RUN_WORKFLOW = "timestep.agent_run"


class RunRequest(TypedDict, total=False):
    agent: str
    agent_ref: str | None
    input: str | list[Any] | None
    state: str | None
    """A serialized RunState to resume (Python format)."""
    session_id: str | None
    max_turns: int | None
    stream: bool
    approvals: ApprovalPolicy


class RunSummary(TypedDict):
    """The workflow's output: enough for any process to rebuild an SDK-shaped result."""

    final_output: Any
    last_agent: str
    interrupted: bool
    state: str | None
    """An interrupted run's RunState JSON, to approve and resume from anywhere."""
    items: list[Any] | None
    """A finished run's new items, as input items (far cheaper than its whole RunState)."""
    usage: dict[str, Any]
    records: RunRecords
    """The run's usage and tool-call rows: the recorder writes them again from here if a
    crash took them before its write."""


_model_provider: ModelProvider | None = None
# In-process fast path: the live SDK result of a run that a caller in this process awaits.
_awaited: set[str] = set()
_live_results: dict[str, RunResult] = {}


def set_model_provider(provider: ModelProvider | None) -> None:
    """The provider durable runs get their models from (default: ``MultiModelProvider()``).
    Set it at import time, like agents: a recovered run uses the process's provider."""
    global _model_provider
    _model_provider = provider


def get_model_provider() -> ModelProvider:
    global _model_provider
    if _model_provider is None:
        from timestep.providers import MultiModelProvider

        _model_provider = MultiModelProvider()
    return _model_provider


def expect_live_result(workflow_id: str) -> None:
    """Ask the workflow to hand its live ``RunResult`` to a caller in this process."""
    _awaited.add(workflow_id)


def take_live_result(workflow_id: str) -> RunResult | None:
    _awaited.discard(workflow_id)
    return _live_results.pop(workflow_id, None)


@DBOS.workflow(name=AGENT_RUN_WORKFLOW)
async def agent_run_workflow(request: RunRequest) -> RunSummary:
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None
    agent = resolve_agent(request["agent"], request.get("agent_ref"))
    run = DurableRunContext(
        workflow_id=workflow_id,
        agent_name=agent.name,
        session_id=request.get("session_id"),
        stream=bool(request.get("stream")),
    )
    token = set_current_run(run)
    try:
        starting = durable_agent(agent)
        run_input: Any = request.get("input") or []
        if request.get("state"):
            run_input = await RunState.from_json(starting, json.loads(request["state"]))
        result = await _run(starting, run_input, request, run)
        policy = request.get("approvals") or {}
        round_index = 0
        while result.interruptions and policy.get("wait"):
            state = result.to_state()
            await wait_for_decisions(run, state, result.interruptions, policy, round_index)
            result = await _run(starting, state, request, run)
            round_index += 1
    finally:
        reset_current_run(token)
    records = record_run(run, result)
    interrupted = bool(result.interruptions)
    summary: RunSummary = {
        "final_output": result.final_output,
        "last_agent": result.last_agent.name,
        "interrupted": interrupted,
        "state": result.to_state().to_string() if interrupted else None,
        "items": None if interrupted else _input_items(result),
        "usage": serialize_usage(result.context_wrapper.usage),
        "records": records,
    }
    if workflow_id in _awaited:
        _live_results[workflow_id] = result
    return summary


def _input_items(result: RunResult) -> list[Any]:
    # A run resumed after approvals keeps its approval records among new_items; they are
    # bookkeeping, not conversation, and the SDK refuses to turn them into input items.
    return [item.to_input_item() for item in result.new_items if item.type != "tool_approval_item"]


async def _run(
    starting: Agent[Any], run_input: Any, request: RunRequest, run: DurableRunContext
) -> RunResult:
    session = TimestepSession(run.session_id) if run.session_id else None
    run_config = RunConfig(model_provider=DurableModelProvider(get_model_provider()))
    try:
        return await Runner.run(
            starting,
            run_input,
            session=session,
            run_config=run_config,
            max_turns=request.get("max_turns") or DEFAULT_MAX_TURNS,
        )
    except AgentsException as exc:
        # run_data holds live agents and tools: not serializable, and meaningless elsewhere.
        exc.run_data = None
        raise
