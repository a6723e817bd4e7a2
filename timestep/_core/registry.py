"""Agents by name, so a workflow recovered in a fresh process can rebuild its agent.

Workflow arguments carry the agent's name and, when the agent is importable, its
``module:attr`` reference: recovery looks the name up in the process's ``AgentRegistry``, or
imports the reference.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

from agents import Agent

from timestep.errors import AgentNotRegisteredError

__all__ = ["AgentEntry", "AgentRegistry", "agent_graph", "import_ref"]

logger = logging.getLogger("timestep")


@dataclass(frozen=True)
class AgentEntry:
    agent: Agent[Any]
    ref: str | None


class AgentRegistry:
    """The agents this process can run, by name (one per process, on its ``ProcessState``)."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentEntry] = {}
        self._lock = threading.Lock()

    def register(self, agent: Agent[Any], *, ref: str | None = None) -> AgentEntry:
        """Register ``agent`` under its name; see ``timestep.register_agent``."""
        if not isinstance(agent, Agent):
            raise TypeError(f"expected an agents.Agent, got {type(agent).__name__}")
        with self._lock:
            existing = self._agents.get(agent.name)
            if (
                existing is not None
                and existing.agent is agent
                and (ref is None or ref == existing.ref)
            ):
                return existing
            entry = AgentEntry(agent, ref or _find_ref(agent))
            self._agents[agent.name] = entry
            return entry

    def get(self, name: str) -> Agent[Any] | None:
        entry = self._agents.get(name)
        return entry.agent if entry else None

    def entries(self) -> dict[str, AgentEntry]:
        return dict(self._agents)

    def resolve(self, name: str, ref: str | None = None) -> Agent[Any]:
        """The agent named ``name``: registered here, else imported from ``ref``."""
        entry = self._agents.get(name)
        if entry is not None:
            return entry.agent
        if ref:
            try:
                agent = import_ref(ref)
            except Exception as exc:
                logger.warning("importing agent %r from %r failed: %s", name, ref, exc)
            else:
                if isinstance(agent, Agent) and agent.name == name:
                    self.register(agent, ref=ref)
                    return agent
        raise AgentNotRegisteredError(name, list(self._agents), ref)


def agent_graph(agent: Agent[Any]) -> dict[str, Agent[Any]]:
    """``agent`` and every agent reachable through its handoffs, by name."""
    found: dict[str, Agent[Any]] = {}
    stack: list[Any] = [agent]
    while stack:
        current = stack.pop()
        if not isinstance(current, Agent) or current.name in found:
            continue
        found[current.name] = current
        stack.extend(
            h if isinstance(h, Agent) else getattr(h, "agent", None) for h in current.handoffs
        )
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
