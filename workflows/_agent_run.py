"""The agent-run workflow: the SDK's ``Runner`` inside ``@DBOS.workflow``.

Its argument is plain JSON-able data (``RunRequest``), so DBOS can recover it in a fresh
process: the agent is found by name (or imported from its ``module:attr``), made durable, and
run again; finished model and tool steps replay from their checkpoints.
"""

from __future__ import annotations

import json
from typing import Any

from agents import Agent, RunConfig, Runner, RunState
from agents.exceptions import AgentsException
from agents.result import RunResult
from agents.run import DEFAULT_MAX_TURNS
from agents.usage import serialize_usage
from dbos import DBOS

from timestep._core.process import process_state
from timestep._core.protocol import AGENT_RUN_WORKFLOW, RunRequest, RunSummary
from timestep.steps import (
    CurrentRun,
    DurableModelProvider,
    TimestepSession,
    durable_agent,
    get_model_provider,
    reset_current_run,
    set_current_run,
)

from ._approval_wait import wait_for_decisions
from ._provider_permit import run_with_permit
from ._run_records import record_run

__all__ = ["agent_run_workflow", "expect_live_result", "take_live_result"]


def expect_live_result(workflow_id: str) -> None:
    """Ask the workflow to hand its live ``RunResult`` to a caller in this process (the
    in-process fast path: no rebuilding of the result from the workflow's output)."""
    process_state().awaited.add(workflow_id)


def take_live_result(workflow_id: str) -> RunResult | None:
    process = process_state()
    process.awaited.discard(workflow_id)
    return process.live_results.pop(workflow_id, None)


@DBOS.workflow(name=AGENT_RUN_WORKFLOW)
async def agent_run_workflow(request: RunRequest) -> RunSummary:
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None
    agent = process_state().agents.resolve(request["agent"], request.get("agent_ref"))
    run = CurrentRun(
        workflow_id=workflow_id,
        agent_name=agent.name,
        session_id=request.get("session_id"),
        stream=bool(request.get("stream")),
    )
    token = set_current_run(run)
    try:
        starting = durable_agent(agent)
        run_input: Any = request.get("input") or []
        state_json = request.get("state")
        if state_json:
            run_input = await RunState.from_json(starting, json.loads(state_json))
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
    process = process_state()
    if workflow_id in process.awaited:
        process.live_results[workflow_id] = result
    return summary


def _input_items(result: RunResult) -> list[Any]:
    # A run resumed after approvals keeps its approval records among new_items; they are
    # bookkeeping, not conversation, and the SDK refuses to turn them into input items.
    return [item.to_input_item() for item in result.new_items if item.type != "tool_approval_item"]


async def _run(
    starting: Agent[Any], run_input: Any, request: RunRequest, run: CurrentRun
) -> RunResult:
    session = TimestepSession(run.session_id) if run.session_id else None
    run_config = RunConfig(
        model_provider=DurableModelProvider(get_model_provider(), permits=run_with_permit)
    )
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
