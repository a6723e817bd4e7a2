"""A durable copy of an agent graph: its model, its function tools, its handoff targets'."""

from __future__ import annotations

import dataclasses
from typing import Any

from agents import Agent, Handoff
from agents.models.interface import Model
from agents.tool import FunctionTool

from ._model import DurableModel
from ._tools import durable_tool

__all__ = ["durable_agent"]


def durable_agent(agent: Agent[Any]) -> Agent[Any]:
    """Clone ``agent`` (and, recursively, its handoff targets) with every ``FunctionTool`` and
    any ``Model`` instance wrapped as DBOS steps. Agents used as tools are function tools too:
    each invocation of one is a single step, so a finished sub-run is never repeated.

    The clone is cached while the agent's model, tools and handoffs stay the same objects.
    """
    key = _fingerprint(agent)
    cached = _clones.get(id(agent))
    if cached is not None and cached[0] == key:
        return cached[1]
    clone = _durable(agent, {})
    _clones[id(agent)] = (key, clone, agent)
    return clone


# id(agent) -> (fingerprint, clone, the agent itself: holding it keeps its id from being reused)
_clones: dict[int, tuple[tuple[int, ...], Agent[Any], Agent[Any]]] = {}


def _fingerprint(agent: Agent[Any]) -> tuple[int, ...]:
    return (id(agent.model), *map(id, agent.tools), -1, *map(id, agent.handoffs))


def _durable(agent: Agent[Any], seen: dict[int, Agent[Any]]) -> Agent[Any]:
    existing = seen.get(id(agent))
    if existing is not None:
        return existing  # handoff cycles (A -> B -> A) resolve to the same clone
    changes: dict[str, Any] = {
        "tools": [durable_tool(t) if isinstance(t, FunctionTool) else t for t in agent.tools]
    }
    if isinstance(agent.model, Model) and not isinstance(agent.model, DurableModel):
        changes["model"] = DurableModel(agent.model)
    clone = agent.clone(**changes)
    seen[id(agent)] = clone
    clone.handoffs = [_durable_handoff(h, seen) for h in agent.handoffs]
    return clone


def _durable_handoff(handoff: Agent[Any] | Handoff[Any, Any], seen: dict[int, Agent[Any]]) -> Any:
    if isinstance(handoff, Agent):
        return _durable(handoff, seen)
    original = handoff.on_invoke_handoff

    async def on_invoke_handoff(*args: Any, **kwargs: Any) -> Agent[Any]:
        return _durable(await original(*args, **kwargs), seen)

    return dataclasses.replace(handoff, on_invoke_handoff=on_invoke_handoff)
