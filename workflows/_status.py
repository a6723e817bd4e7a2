"""Reading a run back from its DBOS workflow status, in any process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ._scheduled import SCHEDULED_RUN_WORKFLOW

__all__ = ["request_of", "time_of"]


def request_of(status: Any) -> dict[str, Any]:
    """The run's request (agent, input, session id...) from the workflow's recorded arguments;
    for a schedule's fire, from its schedule context. ``{}`` when unknown."""
    if status is None or not status.input:
        return {}
    args = list(status.input.get("args") or ())
    if status.name == SCHEDULED_RUN_WORKFLOW and len(args) > 1 and isinstance(args[1], dict):
        context = args[1]
        shared = context.get("session") == "shared"
        return {
            **context,
            "session_id": context.get("session_id") if shared else status.workflow_id,
        }
    return args[0] if args and isinstance(args[0], dict) else {}


def time_of(epoch_ms: int | None) -> datetime | None:
    """A DBOS timestamp (epoch milliseconds) as an aware datetime."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC) if epoch_ms is not None else None
