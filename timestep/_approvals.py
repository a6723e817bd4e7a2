"""Answer a waiting run's tool approvals from any process: the worker, the CLI, the HTTP API.

A process that launched DBOS sends through it; any other process sends through a
``DBOSClient`` on the same database, so approving needs no worker of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSClient

from ._recorder import flush_records
from ._runtime import current_database, is_dbos_launched
from ._storage import get_engine, tool_calls_table
from .errors import ApprovalError
from .workflows import APPROVALS_EVENT, DECISION_TOPIC, Decision, PendingApproval

__all__ = [
    "ApprovalDecision",
    "approve",
    "reject",
    "decide",
    "get_pending_approvals",
    "list_pending_approvals",
]


@dataclass(frozen=True)
class ApprovalDecision:
    """One decision, for ``decide`` (the batch form)."""

    call_id: str
    approve: bool
    always: bool = False
    message: str | None = None


async def approve(
    workflow_id: str, call_id: str, *, always: bool = False, by: str | None = None
) -> None:
    """Approve a pending tool call of a durable run. ``always`` approves later calls of the
    same tool in this run too."""
    await decide(workflow_id, [ApprovalDecision(call_id, True, always)], by=by)


async def reject(
    workflow_id: str,
    call_id: str,
    message: str | None = None,
    *,
    always: bool = False,
    by: str | None = None,
) -> None:
    """Reject a pending tool call; ``message`` is what the model is told instead of the output."""
    await decide(workflow_id, [ApprovalDecision(call_id, False, always, message)], by=by)


async def decide(
    workflow_id: str,
    decisions: Iterable[ApprovalDecision],
    *,
    by: str | None = None,
    check_pending: bool = True,
) -> None:
    """Send several decisions to one run. With ``check_pending`` (default) a call id the run is
    not waiting on raises ``ApprovalError`` instead of being silently ignored."""
    decisions = list(decisions)
    if check_pending:
        pending = {p["call_id"] for p in await get_pending_approvals(workflow_id)}
        unknown = [d.call_id for d in decisions if d.call_id not in pending]
        if unknown:
            listed = ", ".join(sorted(pending)) or "none"
            raise ApprovalError(
                f"run {workflow_id!r} is not waiting on {', '.join(unknown)} (pending: {listed})"
            )
    at = datetime.now(UTC).isoformat()
    for d in decisions:
        message: Decision = {
            "call_id": d.call_id,
            "approve": d.approve,
            "always": d.always,
            "message": d.message,
            "by": by,
            "at": at,
        }
        await _send(workflow_id, message)


async def get_pending_approvals(workflow_id: str) -> list[PendingApproval]:
    """The approvals one run is waiting on (empty when it waits on none)."""
    if is_dbos_launched():
        value = await DBOS.get_event_async(workflow_id, APPROVALS_EVENT, timeout_seconds=0)
    else:
        client = _client()
        try:
            value = await client.get_event_async(workflow_id, APPROVALS_EVENT, timeout_seconds=0)
        finally:
            client.destroy()
    return list(value or [])


async def list_pending_approvals(*, session_id: str | None = None) -> list[dict[str, Any]]:
    """Every tool call waiting for a decision, across runs (newest first)."""
    await flush_records()  # this process's interrupted runs, whose rows may be on their way
    t = tool_calls_table
    query = sa.select(t).where(t.c.status == "pending_approval").order_by(t.c.created_at.desc())
    if session_id is not None:
        query = query.where(t.c.session_id == session_id)
    engine = await get_engine(current_database().url)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [dict(row) for row in rows]


async def _send(workflow_id: str, message: Decision) -> None:
    if is_dbos_launched():
        await DBOS.send_async(workflow_id, message, DECISION_TOPIC)
        return
    client = _client()
    try:
        await client.send_async(workflow_id, message, DECISION_TOPIC)
    finally:
        client.destroy()


def _client() -> DBOSClient:
    return DBOSClient(system_database_url=current_database().url)
