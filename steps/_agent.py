"""The agents a durable run executes, made durable where they are.

A durable run executes the very ``Agent`` objects it was given, so hooks, dynamic
instructions, guardrails, results and stream events see the user's objects, as under
``Runner.run``. What touches the world is made durable on the objects themselves:

- every ``FunctionTool``'s invocation becomes a step (``_tools.make_tool_durable``), agents
  used as tools included (a sub-run is one step); so do the calls of local shell, shell and
  apply-patch tools (``_tools.make_local_tool_durable``);
- a ``Model`` instance on an agent has its calls made steps (``_model.make_model_durable``);
- its MCP servers' tool listings and tool calls become steps (``_mcp.make_agent_mcp_durable``);
- its input and output guardrails' checks become steps (``_guardrails``), so one that calls a
  model asks it once;
  models named by string come from the run's durable provider instead;
- agents reached by handoff are made durable too (eagerly where the handoff knows its agent,
  else when the handoff returns it).

Each of these is transparent outside a durable run: the same agent run by a plain
``Runner.run`` behaves exactly as before. Making an agent durable is idempotent and keeps no
reference to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from agents import Agent, Handoff
from agents.models.interface import Model
from agents.tool import ApplyPatchTool, FunctionTool, LocalShellTool, ShellTool

from ._guardrails import make_guardrails_durable
from ._mcp import make_agent_mcp_durable
from ._model import make_model_durable
from ._tools import make_local_tool_durable, make_tool_durable

__all__ = ["make_agent_durable"]

_HANDOFF_MARK = "__timestep_durable_handoff__"


def make_agent_durable(agent: Agent[Any]) -> Agent[Any]:
    """Make ``agent`` and every agent reachable from it durable, in place; returns ``agent``."""
    seen: set[int] = set()
    stack: list[Agent[Any]] = [agent]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for tool in current.tools:
            if isinstance(tool, FunctionTool):
                make_tool_durable(tool)
            elif isinstance(tool, LocalShellTool | ShellTool | ApplyPatchTool):
                make_local_tool_durable(tool)
        if isinstance(current.model, Model):
            make_model_durable(current.model)
        make_agent_mcp_durable(current)
        make_guardrails_durable([*current.input_guardrails, *current.output_guardrails])
        for handoff in current.handoffs:
            if isinstance(handoff, Agent):
                stack.append(handoff)
            elif isinstance(handoff, Handoff):
                target = _handoff_target(handoff)
                if target is not None:
                    stack.append(target)
                _make_handoff_durable(handoff)
    return agent


def _handoff_target(handoff: Handoff[Any, Any]) -> Agent[Any] | None:
    ref = getattr(handoff, "_agent_ref", None)
    target = ref() if callable(ref) else None
    return target if isinstance(target, Agent) else None


def _make_handoff_durable(handoff: Handoff[Any, Any]) -> None:
    """A handoff whose target is only known once it is invoked makes that agent durable
    before the SDK runs it."""
    if getattr(handoff.on_invoke_handoff, _HANDOFF_MARK, False):
        return
    original: Callable[..., Awaitable[Agent[Any]]] = handoff.on_invoke_handoff

    async def on_invoke_handoff(*args: Any, **kwargs: Any) -> Agent[Any]:
        return make_agent_durable(await original(*args, **kwargs))

    setattr(on_invoke_handoff, _HANDOFF_MARK, True)
    if dataclasses.is_dataclass(handoff):
        object.__setattr__(handoff, "on_invoke_handoff", on_invoke_handoff)
