"""The durable run a step belongs to: per-run facts the model and tool wrappers need, in a
context variable.

The SDK runs tools in child tasks and its streamed loop in a task of its own; tasks copy the
context, so they all see the same object.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbos import DBOS

if TYPE_CHECKING:  # the publisher is a step-layer object; only its type is needed here
    from timestep._core.tracing import RunTrace

    from ._stream import StreamPublisher

__all__ = ["CurrentRun", "current_run", "durable_run", "reset_current_run", "set_current_run"]


@dataclass
class CurrentRun:
    workflow_id: str
    agent_name: str
    session_id: str | None = None
    stream: bool = False
    tags: tuple[str, ...] = ()
    """The run's tags (``run_agent(..., tags=[...])``), for budgets."""
    # Step ids reserved for the local calls of the last model response, by call id: parallel
    # tool calls then checkpoint at ids fixed by the model's output order, whatever order the
    # SDK's tasks happen to start in, so a replay matches the log.
    reservations: dict[str, Any] = field(default_factory=dict)
    patch_calls: list[str] = field(default_factory=list)
    """The apply_patch call ids among ``reservations``, in the model's order: an editor
    operation is not told its call id, and the SDK applies them one by one in that order."""
    model_names: list[str] = field(default_factory=list)
    publisher: StreamPublisher | None = None
    """Set while the SDK's streamed loop runs: it publishes the run's events."""
    writes: list[Any] = field(default_factory=list)
    """Tasks writing the run's own rows (not steps: idempotent, and written again on replay)
    off its path; the workflow awaits them before it returns."""
    check_budgets: bool = False
    """Whether the run's model calls check budgets: decided when the run started and kept in
    its request, so every process that runs it takes the same steps."""
    trace: RunTrace | None = None
    """The run's OpenTelemetry trace, when the process has a tracer provider."""
    permits: Any = None
    """The run's ``PermitGate``, for models made durable in place (they have no provider
    limit, but budgets still apply to their calls)."""


_current: ContextVar[CurrentRun | None] = ContextVar("timestep_run", default=None)


def current_run() -> CurrentRun | None:
    return _current.get()


def durable_run() -> CurrentRun | None:
    """The Timestep run whose workflow code is executing here, if any.

    ``None`` outside Timestep's runs (a plain ``Runner.run`` of the same agent) and inside a
    step (an agent used as a tool runs its whole sub-run inside its tool's step): there the
    durable wrappers step aside and call through."""
    run = _current.get()
    if run is None or DBOS.workflow_id is None or DBOS.step_id is not None:
        return None
    return run


def set_current_run(run: CurrentRun | None) -> Token[CurrentRun | None]:
    return _current.set(run)


def reset_current_run(token: Token[CurrentRun | None]) -> None:
    _current.reset(token)
