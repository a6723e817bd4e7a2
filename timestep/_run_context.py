"""Per-run facts the durable model and tool wrappers need, carried in a context variable.

The SDK runs tools in child tasks; tasks copy the context, so they all see the same object.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DurableRunContext", "current_run", "STREAM_KEY"]

STREAM_KEY = "timestep.events"
"""The DBOS stream a run's live events are written to."""


@dataclass
class DurableRunContext:
    workflow_id: str
    agent_name: str
    session_id: str | None = None
    stream: bool = False
    tool_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Step ids reserved for the function calls of the last model response, by call id: parallel
    # tool calls then checkpoint at ids fixed by the model's output order, whatever order the
    # SDK's tasks happen to start in, so a replay matches the log.
    reservations: dict[str, Any] = field(default_factory=dict)
    model_names: list[str] = field(default_factory=list)


_current: ContextVar[DurableRunContext | None] = ContextVar("timestep_run", default=None)


def current_run() -> DurableRunContext | None:
    return _current.get()


def set_current_run(run: DurableRunContext | None) -> Any:
    return _current.set(run)


def reset_current_run(token: Any) -> None:
    _current.reset(token)
