"""What a worker registers at import so that it can recover any run: agents (or factories
that build them), and how values of other types travel with runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents import Agent

from timestep._core.process import process_state
from timestep._core.registry import AgentEntry, DefinitionChange

__all__ = ["register_agent", "register_agent_factory", "register_type", "registered_agents"]


def register_agent(
    agent: Agent[Any],
    *,
    ref: str | None = None,
    on_definition_change: DefinitionChange = "fail",
) -> AgentEntry:
    """Register ``agent`` under its name, so a run of it recovered in this process (after a
    crash, or started by another process) finds it. Register at import, before DBOS launches.

    ``ref`` (``"package.module:attr"``) lets a fresh process import the agent itself; when not
    given it is looked for in the agent's defining modules. A recovered run checks that the
    agent's definition (instructions, model, tools and their schemas, handoffs, output type)
    is the one it started with; ``on_definition_change="continue"`` goes on with the new one
    instead of failing with ``AgentDefinitionChangedError``. Registering another agent under
    a taken name replaces it.

    Args:
        agent: The agent; its ``name`` is the key runs record.
        ref: Where a fresh process imports it from (``"package.module:attr"``).
        on_definition_change: ``"fail"`` or ``"continue"``, for a recovered run whose agent
            definition changed.

    Returns:
        The registry's entry for the agent.

    Raises:
        TypeError: ``agent`` is not an ``Agent``.
    """
    return process_state().agents.register(
        agent, ref=ref, on_definition_change=on_definition_change
    )


def register_agent_factory(
    name: str,
    factory: Callable[[Any], Agent[Any]],
    *,
    on_definition_change: DefinitionChange = "fail",
) -> AgentEntry:
    """Register how to build the agent named ``name`` from a run's context, for agents made
    per tenant or per request: a recovered run calls ``factory(context)``.

    Args:
        name: The name of the agents the factory builds (runs record it).
        factory: Builds the agent from a run's context.
        on_definition_change: ``"fail"`` or ``"continue"``, for a recovered run whose agent
            definition changed.

    Returns:
        The registry's entry for the factory.
    """
    return process_state().agents.register_factory(
        name, factory, on_definition_change=on_definition_change
    )


def register_type(
    cls: type,
    *,
    dump: Callable[[Any], Any] | None = None,
    load: Callable[..., Any] | None = None,
) -> None:
    """How values of ``cls`` given to a run (its context, hooks, session, a RunConfig field)
    travel to a process that recovers it.

    ``dump(value)`` gives JSON to store with the run and ``load(json)`` rebuilds the value
    from it; without ``dump`` nothing is stored and ``load()`` (default: ``cls()``) rebuilds
    it, e.g. hooks, or a context that holds a connection pool. Values pydantic can serialize
    (pydantic models, dataclasses, TypedDicts, dicts) need no registration.

    Args:
        cls: The type, matched exactly (a subclass needs its own registration).
        dump: Turns a value into JSON to store with the run.
        load: Rebuilds a value: ``load(json)`` with ``dump``, ``load()`` without (default
            ``cls``).

    Raises:
        TypeError: ``cls`` is not a class.
    """
    process_state().type_codecs.register(cls, dump=dump, load=load)


def registered_agents() -> dict[str, AgentEntry]:
    """The registered agents by name."""
    return process_state().agents.entries()
