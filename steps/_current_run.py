"""The durable run a step belongs to: per-run facts the model and tool wrappers need, in a
context variable.

The SDK runs tools in child tasks; tasks copy the context, so they all see the same object.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CurrentRun", "current_run", "reset_current_run", "set_current_run"]


@dataclass
class CurrentRun:
    workflow_id: str
    agent_name: str
    session_id: str | None = None
    stream: bool = False
    # Step ids reserved for the function calls of the last model response, by call id: parallel
    # tool calls then checkpoint at ids fixed by the model's output order, whatever order the
    # SDK's tasks happen to start in, so a replay matches the log.
    reservations: dict[str, Any] = field(default_factory=dict)
    model_names: list[str] = field(default_factory=list)


_current: ContextVar[CurrentRun | None] = ContextVar("timestep_run", default=None)


def current_run() -> CurrentRun | None:
    return _current.get()


def set_current_run(run: CurrentRun | None) -> Token[CurrentRun | None]:
    return _current.set(run)


def reset_current_run(token: Token[CurrentRun | None]) -> None:
    _current.reset(token)
