"""Agents by name, so a workflow recovered in a fresh process can rebuild its agent.

Workflow arguments carry the agent's name, the fingerprint of its definition and, when the
agent is importable, its ``module:attr`` reference. A run that starts in a process executes
the agent object it was given; a recovery in another process looks the name up in the
process's ``AgentRegistry`` (filled at import: an agent, or a factory that builds it from the
run's context), or imports the reference, and checks the fingerprint.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from agents import Agent

from timestep.errors import (
    AgentDefinitionChangedError,
    AgentNameConflictError,
    AgentNotRegisteredError,
)

from .fingerprint import AgentFingerprint, agents_in_graph, describe_changes, fingerprint

__all__ = [
    "AgentEntry",
    "AgentRefs",
    "AgentRegistry",
    "DefinitionChange",
    "agent_graph",
    "import_ref",
]

DefinitionChange = Literal["fail", "continue"]
"""What a recovery does when the agent's definition changed since the run started."""

logger = logging.getLogger("timestep")


@dataclass(frozen=True)
class AgentEntry:
    agent: Agent[Any] | None
    ref: str | None
    factory: Callable[[Any], Agent[Any]] | None = None
    """Builds the agent from the run's context (per-tenant agents, agents built per request)."""
    on_definition_change: DefinitionChange = "fail"

    def build(self, context: Any) -> Agent[Any]:
        if self.agent is not None:
            return self.agent
        assert self.factory is not None
        agent = self.factory(context)
        if not isinstance(agent, Agent):
            raise TypeError(f"the agent factory returned a {type(agent).__name__}, not an Agent")
        return agent


class AgentRegistry:
    """The agents this process can run, by name (one per process, on its ``ProcessState``)."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentEntry] = {}
        self._lock = threading.Lock()

    def register(
        self,
        agent: Agent[Any],
        *,
        ref: str | None = None,
        on_definition_change: DefinitionChange = "fail",
        replace: bool = True,
    ) -> AgentEntry:
        """Register ``agent`` under its name; see ``timestep.register_agent``. With
        ``replace=False`` a name another agent holds raises ``AgentNameConflictError``."""
        if not isinstance(agent, Agent):
            raise TypeError(f"expected an agents.Agent, got {type(agent).__name__}")
        with self._lock:
            existing = self._agents.get(agent.name)
            if not replace and existing is not None and existing.agent is not agent:
                held = f" ({existing.ref})" if existing.ref else ""
                raise AgentNameConflictError(
                    f"an agent named {agent.name!r}{held} is already served here; "
                    f"{ref or 'the new agent'} would replace it"
                )
            if (
                existing is not None
                and existing.agent is agent
                and (ref is None or ref == existing.ref)
                and existing.on_definition_change == on_definition_change
            ):
                return existing
            entry = AgentEntry(agent, ref or _find_ref(agent), None, on_definition_change)
            self._agents[agent.name] = entry
            return entry

    def register_factory(
        self,
        name: str,
        factory: Callable[[Any], Agent[Any]],
        *,
        on_definition_change: DefinitionChange = "fail",
    ) -> AgentEntry:
        """Register how to build the agent named ``name`` from a run's context."""
        if not callable(factory):
            raise TypeError("an agent factory must be callable (context -> Agent)")
        entry = AgentEntry(None, None, factory, on_definition_change)
        with self._lock:
            self._agents[name] = entry
        return entry

    def restore(self, entries: dict[str, AgentEntry]) -> list[str]:
        """Put back each of ``entries`` (a snapshot from ``entries()``) that was replaced since;
        returns the names put back."""
        with self._lock:
            replaced = [n for n, e in entries.items() if self._agents.get(n) is not e]
            for name in replaced:
                self._agents[name] = entries[name]
        return replaced

    def get(self, name: str) -> Agent[Any] | None:
        """The agent registered under ``name`` (None for a factory, or none)."""
        entry = self._agents.get(name)
        return entry.agent if entry else None

    def entries(self) -> dict[str, AgentEntry]:
        return dict(self._agents)

    def resolve(
        self,
        name: str,
        ref: str | None = None,
        *,
        context: Any = None,
        recorded: AgentFingerprint | None = None,
    ) -> Agent[Any]:
        """The agent named ``name`` for a recovered run: registered here (or built by its
        factory from the run's ``context``), else imported from ``ref``. With ``recorded``,
        a definition that changed since the run started raises
        ``AgentDefinitionChangedError`` unless the agent was registered to continue."""
        entry = self._agents.get(name)
        if entry is None and ref:
            try:
                imported = import_ref(ref)
            except Exception as exc:
                logger.warning("importing agent %r from %r failed: %s", name, ref, exc)
            else:
                if isinstance(imported, Agent) and imported.name == name:
                    entry = AgentEntry(imported, ref)
        if entry is None:
            raise AgentNotRegisteredError(name, list(self._agents), ref)
        agent = entry.build(context)
        if recorded is not None and entry.on_definition_change == "fail":
            changes = describe_changes(recorded, fingerprint(agent))
            if changes:
                raise AgentDefinitionChangedError(name, changes)
        return agent


class AgentRefs:
    """Each agent object's ``module:attr`` (or None), found once per object and forgotten
    when the object is: backends that build an agent per request keep nothing alive."""

    def __init__(self) -> None:
        self._refs: dict[int, str | None] = {}
        self._lock = threading.Lock()

    def ref_of(self, agent: Agent[Any]) -> str | None:
        key = id(agent)
        try:
            return self._refs[key]
        except KeyError:
            pass
        ref = _find_ref(agent)
        with self._lock:
            if key not in self._refs:
                self._refs[key] = ref
                weakref.finalize(agent, self._refs.pop, key, None)
        return ref

    def __len__(self) -> int:
        return len(self._refs)


def agent_graph(agent: Agent[Any]) -> dict[str, Agent[Any]]:
    """``agent`` and every agent reachable through its handoffs, by name."""
    found: dict[str, Agent[Any]] = {}
    for current in agents_in_graph(agent):
        found.setdefault(current.name, current)
    return found


def import_ref(ref: str) -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:attribute', got {ref!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def _find_ref(agent: Agent[Any]) -> str | None:
    """Find a module-level name bound to ``agent``, looking at user modules only."""
    for module_name, module in list(sys.modules.items()):
        # A script's own module (``__main__``, or ``__mp_main__`` where multiprocessing is
        # used) cannot be imported by name in another process.
        if module_name.startswith("__") or module is None:
            continue
        namespace = getattr(module, "__dict__", None)
        if not namespace or _is_library(module):
            continue
        for attr, value in list(namespace.items()):
            if value is agent:
                return f"{module_name}:{attr}"
    return None


_LIBRARY_ROOTS = tuple(
    p for p in {sys.prefix, sys.base_prefix, getattr(sys, "exec_prefix", "")} if p
)


def _is_library(module: Any) -> bool:
    path = getattr(module, "__file__", None) or ""
    return not path or "site-packages" in path or path.startswith(_LIBRARY_ROOTS)
