"""A run started in this process: the caller's own objects, handed to the workflow as given.

Workflow arguments are plain JSON, so they cannot carry the caller's agent, context, hooks or
session. The process that starts a run keeps them here, under the run's workflow id, and the
workflow uses them when it executes in that process; elsewhere (a recovery in a fresh
process) it rebuilds them from the recorded argument. The entry also carries the run's live
events and its live SDK result back to a caller waiting in this process, and is dropped when
the run ends and its caller has what it needs, so nothing of a run outlives it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunConfig, RunHooks
from agents.memory.session import Session
from agents.result import RunResult, RunResultStreaming
from agents.stream_events import StreamEvent

__all__ = ["LiveRun", "RunObjects"]


@dataclass
class RunObjects:
    """What a run was given that is not plain data."""

    agent: Agent[Any]
    context: Any = None
    hooks: RunHooks[Any] | None = None
    run_config: RunConfig | None = None
    error_handlers: Any = None
    session: Session | None = None


@dataclass
class LiveRun:
    objects: RunObjects
    awaited: bool = False
    """A caller in this process waits for the live result (else the workflow drops the entry)."""
    result: RunResult | RunResultStreaming | None = None
    streaming: RunResultStreaming | None = None
    """The SDK's streamed run while it lasts (current agent, turn, ``cancel``)."""
    subscribers: list[asyncio.Queue[StreamEvent | None]] = field(default_factory=list)
