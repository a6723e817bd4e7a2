"""An agent graph's fingerprint: what a run's definition was, to tell whether it changed.

A run records the fingerprint of the agent graph it started with. When a fresh process
recovers the run and finds its agent by name, the two fingerprints are compared, and a
change (an edited instruction, a tool added or removed, a tool's schema, the model, the
handoffs, the output type) is reported in words instead of silently running a different
agent from the middle of a conversation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from agents import Agent, Handoff
from agents.agent_output import AgentOutputSchemaBase
from agents.tool import FunctionTool

__all__ = ["AgentFingerprint", "agents_in_graph", "describe_changes", "fingerprint"]

AgentFingerprint = dict[str, dict[str, Any]]
"""Per agent name: a short digest (or a name) per part of its definition."""


def fingerprint(agent: Agent[Any]) -> AgentFingerprint:
    """The fingerprint of ``agent`` and every agent its handoffs reach, by agent name."""
    return {current.name: _parts(current) for current in agents_in_graph(agent)}


def describe_changes(recorded: AgentFingerprint, current: AgentFingerprint) -> list[str]:
    """What differs between two fingerprints, one phrase per change (empty: the same)."""
    changes: list[str] = []
    for name in sorted(recorded.keys() | current.keys()):
        before, after = recorded.get(name), current.get(name)
        if before is None:
            changes.append(f"agent {name!r} was added")
            continue
        if after is None:
            changes.append(f"agent {name!r} was removed")
            continue
        for part in ("instructions", "model", "model_settings", "output_type", "handoffs"):
            if before.get(part) != after.get(part):
                changes.append(f"agent {name!r}: {part.replace('_', ' ')} changed")
        before_tools, after_tools = before.get("tools", {}), after.get("tools", {})
        for tool in sorted(before_tools.keys() - after_tools.keys()):
            changes.append(f"agent {name!r}: tool {tool!r} was removed")
        for tool in sorted(after_tools.keys() - before_tools.keys()):
            changes.append(f"agent {name!r}: tool {tool!r} was added")
        for tool in sorted(before_tools.keys() & after_tools.keys()):
            if before_tools[tool] != after_tools[tool]:
                changes.append(f"agent {name!r}: tool {tool!r} changed its schema")
    return changes


def agents_in_graph(agent: Agent[Any]) -> Iterator[Agent[Any]]:
    """``agent`` and every agent its handoffs reach (each once, cycles included)."""
    seen: set[int] = set()
    stack = [agent]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for handoff in current.handoffs:
            target = handoff if isinstance(handoff, Agent) else _handoff_agent(handoff)
            if target is not None:
                stack.append(target)


def _handoff_agent(handoff: Handoff[Any, Any]) -> Agent[Any] | None:
    ref = getattr(handoff, "_agent_ref", None)
    target = ref() if callable(ref) else None
    return target if isinstance(target, Agent) else None


def _parts(agent: Agent[Any]) -> dict[str, Any]:
    return {
        "instructions": _digest(_callable_or_value(agent.instructions)),
        "model": _model_name(agent.model),
        "model_settings": _digest(agent.model_settings.to_json_dict()),
        "output_type": _output_type(agent.output_type),
        "handoffs": sorted(_handoff_name(h) for h in agent.handoffs),
        "tools": {_tool_name(tool): _digest(_tool_schema(tool)) for tool in agent.tools},
    }


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _callable_or_value(value: Any) -> Any:
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return value


def _model_name(model: Any) -> str | None:
    if model is None or isinstance(model, str):
        return model
    return f"{type(model).__name__}:{getattr(model, 'model', '')}"


def _output_type(output_type: Any) -> str | None:
    if output_type is None or output_type is str:
        return None
    if isinstance(output_type, AgentOutputSchemaBase):
        return _digest(output_type.json_schema())
    return f"{getattr(output_type, '__module__', '?')}.{getattr(output_type, '__qualname__', repr(output_type))}"


def _handoff_name(handoff: Agent[Any] | Handoff[Any, Any]) -> str:
    if isinstance(handoff, Agent):
        return handoff.name
    return f"{handoff.tool_name}->{handoff.agent_name}"


def _tool_name(tool: Any) -> str:
    return str(getattr(tool, "name", None) or type(tool).__name__)


def _tool_schema(tool: Any) -> Any:
    if isinstance(tool, FunctionTool):
        return {
            "description": tool.description,
            "parameters": tool.params_json_schema,
            "strict": tool.strict_json_schema,
        }
    return {"type": type(tool).__name__}
