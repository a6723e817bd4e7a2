"""A durable copy of an agent graph: its model, its function tools, its handoff targets'."""

from __future__ import annotations

import dataclasses
from copy import copy as shallow_copy
from typing import Any

from agents import Agent, Handoff
from agents.models.interface import Model
from agents.tool import FunctionTool

from timestep._core.process import process_state

from ._model import DurableModel
from ._tools import durable_tool

__all__ = ["durable_agent"]


def durable_agent(agent: Agent[Any]) -> Agent[Any]:
    """Clone ``agent`` (and, recursively, its handoff targets) with every ``FunctionTool`` and
    any ``Model`` instance wrapped as DBOS steps. Agents used as tools are function tools too:
    each invocation of one is a single step, so a finished sub-run is never repeated.

    The durable graph is cached while the agent's model, tools and handoffs stay the same
    objects; each call returns a copy of its agents of its own (sharing their tools and
    models), because the SDK checks a run's tools against every other run of the same
    ``Agent`` object on each turn, which costs O(runs) when thousands run (or are recovered)
    at once.
    """
    key = _fingerprint(agent)
    durable_agents = process_state().durable_agents
    cached = durable_agents.get(id(agent))
    if cached is None or cached[0] != key:
        cached = (key, _durable(agent, {}), agent)
        durable_agents[id(agent)] = cached
    return _own_copy(cached[1], {})


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


def _own_copy(agent: Agent[Any], seen: dict[int, Agent[Any]]) -> Agent[Any]:
    existing = seen.get(id(agent))
    if existing is not None:
        return existing
    copy = shallow_copy(agent)  # not clone(): its validation of every field costs more
    seen[id(agent)] = copy
    copy.handoffs = [_own_copy(h, seen) if isinstance(h, Agent) else h for h in agent.handoffs]
    return copy


def _durable_handoff(handoff: Agent[Any] | Handoff[Any, Any], seen: dict[int, Agent[Any]]) -> Any:
    if isinstance(handoff, Agent):
        return _durable(handoff, seen)
    original = handoff.on_invoke_handoff

    async def on_invoke_handoff(*args: Any, **kwargs: Any) -> Agent[Any]:
        return _durable(await original(*args, **kwargs), seen)

    return dataclasses.replace(handoff, on_invoke_handoff=on_invoke_handoff)
