"""A finished run's SDK result, rebuilt from its workflow's recorded output in any process.

The output (``RunSummary``) keeps the run's items in the SDK's RunState item form, its model
responses and usage, or, for a run that ended waiting for approvals, its whole RunState; from
those a real ``RunResult`` is built, with items of the same kinds, the same outputs (their
JSON types kept) and the same agents, found by name in the given agent's graph.
"""

from __future__ import annotations

from typing import Any

from agents import Agent, RunContextWrapper, RunState
from agents.items import (
    MessageOutputItem,
    ReasoningItem,
    RunItem,
    ToolCallItem,
    ToolCallOutputItem,
)
from agents.result import RunResult
from agents.usage import deserialize_usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseReasoningItem,
)

from timestep._core.protocol import RunSummary
from timestep._core.registry import agent_graph
from timestep._core.sdk_forms import decode_items, decode_responses

from .results import AgentRunResult

__all__ = ["rebuilt_result"]


async def rebuilt_result(
    workflow_id: str, summary: RunSummary, agent: Agent[Any], request: dict[str, Any]
) -> AgentRunResult:
    agents = agent_graph(agent)
    last_agent = agents.get(summary["last_agent"], agent)
    if summary["state"] is not None:
        state = await RunState.from_string(agent, summary["state"])
        current = state._current_agent or last_agent
        result = RunResult(
            input=state._original_input,
            new_items=list(state._generated_items),
            raw_responses=list(state._model_responses),
            final_output=summary["final_output"],
            input_guardrail_results=list(state._input_guardrail_results),
            output_guardrail_results=list(state._output_guardrail_results),
            tool_input_guardrail_results=list(state._tool_input_guardrail_results),
            tool_output_guardrail_results=list(state._tool_output_guardrail_results),
            context_wrapper=state._context or RunContextWrapper(context=None),
            _last_agent=current,
            max_turns=state._max_turns,
            interruptions=state.get_interruptions(),
        )
        return AgentRunResult(workflow_id, result, state=state)
    items = summary["items"] or []
    usage = deserialize_usage(summary["usage"])
    original_input = request.get("input") or []
    result = RunResult(
        input=original_input,
        new_items=_items(items, agents, last_agent),
        raw_responses=decode_responses(summary.get("responses") or []),
        final_output=summary["final_output"],
        input_guardrail_results=[],
        output_guardrail_results=[],
        tool_input_guardrail_results=[],
        tool_output_guardrail_results=[],
        context_wrapper=RunContextWrapper(context=None, usage=usage),
        _last_agent=last_agent,
        max_turns=request.get("max_turns"),
    )
    result._current_turn = usage.requests
    result._original_input = original_input
    result._starting_agent_for_state = agent
    return AgentRunResult(workflow_id, result)


def _items(items: list[Any], agents: dict[str, Agent[Any]], last: Agent[Any]) -> list[RunItem]:
    if items and isinstance(items[0], dict) and "raw_item" in items[0]:
        return decode_items(items, agents)
    return [_legacy_item(raw, last) for raw in items]


def _legacy_item(raw: dict[str, Any], agent: Agent[Any]) -> RunItem:
    """An item of a run recorded before Timestep 0.2 (input-item form, one agent for all)."""
    kind = raw.get("type")
    if kind == "message" or (kind is None and raw.get("role") == "assistant"):
        return MessageOutputItem(
            agent=agent, raw_item=ResponseOutputMessage.model_validate({**raw, "type": "message"})
        )
    if kind == "function_call":
        return ToolCallItem(agent=agent, raw_item=ResponseFunctionToolCall.model_validate(raw))
    if kind == "function_call_output":
        return ToolCallOutputItem(agent=agent, raw_item=raw, output=raw.get("output"))
    if kind == "reasoning":
        return ReasoningItem(agent=agent, raw_item=ResponseReasoningItem.model_validate(raw))
    return ToolCallItem(agent=agent, raw_item=raw)
