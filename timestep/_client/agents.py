"""``register_agent``: the agents this process can run and recover, by name."""

from __future__ import annotations

from typing import Any

from agents import Agent

from timestep._core.process import process_state
from timestep._core.registry import AgentEntry

__all__ = ["register_agent", "registered_agents"]


def register_agent(agent: Agent[Any], *, ref: str | None = None) -> AgentEntry:
    """Register ``agent`` under its name (done automatically on first run).

    ``ref`` (``"package.module:attr"``) lets a fresh process import the agent itself; when not
    given it is looked for in the agent's defining modules. Registering another agent object
    under a taken name replaces it: the newest definition wins, as after a redeploy.
    """
    return process_state().agents.register(agent, ref=ref)


def registered_agents() -> dict[str, AgentEntry]:
    """The registered agents by name."""
    return process_state().agents.entries()
