"""Answer a waiting run's tool approvals from any process: the worker, the CLI, the HTTP API.

A process that launched DBOS sends through it; any other process sends through a
``DBOSClient`` on the same database, so approving needs no worker of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from timestep._core.decisions import claim_decision, decision_idempotency_key, winning_decisions
from timestep._core.protocol import APPROVALS_EVENT, DECISION_TOPIC, Decision, PendingApproval
from timestep._core.runtime import flush_records, tables_engine
from timestep._core.tables import tool_calls_table
from timestep.errors import ApprovalError, DecisionConflictError

from .system import system

__all__ = [
    "ApprovalDecision",
    "approve",
    "decide",
    "get_pending_approvals",
    "list_pending_approvals",
    "reject",
]


@dataclass(frozen=True)
class ApprovalDecision:
    """One decision, for ``decide`` (the batch form).

    Attributes:
        call_id: The pending tool call's id.
        approve: Approve (True) or reject (False) it.
        always: Decide the same for later calls of the same tool in this run.
        message: For a rejection, what the model is told instead of the tool's output.
    """

    call_id: str
    approve: bool
    always: bool = False
    message: str | None = None


async def approve(
    workflow_id: str, call_id: str, *, always: bool = False, by: str | None = None
) -> None:
    """Approve a pending tool call of a durable run. ``always`` approves later calls of the
    same tool in this run too. The first decision on a call wins; a later one raises
    ``DecisionConflictError``.

    Args:
        workflow_id: The waiting run's workflow id.
        call_id: The pending tool call's id.
        always: Approve later calls of the same tool in this run too.
        by: Who decided, recorded with the decision.

    Raises:
        ApprovalError: The run is not waiting on ``call_id``.
        DecisionConflictError: The call already has a decision.
    """
    await decide(workflow_id, [ApprovalDecision(call_id, True, always)], by=by)


async def reject(
    workflow_id: str,
    call_id: str,
    message: str | None = None,
    *,
    always: bool = False,
    by: str | None = None,
) -> None:
    """Reject a pending tool call; ``message`` is what the model is told instead of the output.
    The first decision on a call wins; a later one raises ``DecisionConflictError``.

    Args:
        workflow_id: The waiting run's workflow id.
        call_id: The pending tool call's id.
        message: What the model is told instead of the tool's output.
        always: Reject later calls of the same tool in this run too.
        by: Who decided, recorded with the decision.

    Raises:
        ApprovalError: The run is not waiting on ``call_id``.
        DecisionConflictError: The call already has a decision.
    """
    await decide(workflow_id, [ApprovalDecision(call_id, False, always, message)], by=by)


async def decide(
    workflow_id: str,
    decisions: Iterable[ApprovalDecision],
    *,
    by: str | None = None,
    check_pending: bool = True,
) -> None:
    """Send several decisions to one run. The first decision on a call wins: a call that
    already has one (from any process) raises ``DecisionConflictError``, which names the
    winner; the others of the batch are still sent. With ``check_pending`` (default) a call
    id the run is not waiting on raises ``ApprovalError`` instead of being silently ignored.

    Args:
        workflow_id: The waiting run's workflow id.
        decisions: The decisions, one per tool call.
        by: Who decided, recorded with each decision.
        check_pending: Check first that the run waits on every call id.

    Raises:
        ApprovalError: With ``check_pending``, the run is not waiting on one of the call ids
            (none sent).
        DecisionConflictError: A call already has a decision (the first such call; the other
            decisions are sent).
    """
    decisions = list(decisions)
    if check_pending:
        # The published list, decided calls included: a decided call goes on to its claim,
        # which loses and names the winner (one read less on the way to the run).
        pending = {p["call_id"] for p in await _published(workflow_id)}
        unknown = [d.call_id for d in decisions if d.call_id not in pending]
        if unknown:
            decided = await winning_decisions(workflow_id, unknown)
            if decided:
                call_id, winner = next(iter(decided.items()))
                raise DecisionConflictError(workflow_id, call_id, dict(winner))
            listed = ", ".join(sorted(pending)) or "none"
            raise ApprovalError(
                f"run {workflow_id!r} is not waiting on {', '.join(unknown)} (pending: {listed})"
            )
    at = datetime.now(UTC).isoformat()
    conflicts: list[DecisionConflictError] = []
    for d in decisions:
        message: Decision = {
            "call_id": d.call_id,
            "approve": d.approve,
            "always": d.always,
            "message": d.message,
            "by": by,
            "at": at,
        }
        won, winner, by_run = await claim_decision(workflow_id, message, uuid.uuid4().hex)
        if not by_run:  # the run applies its own timeout decisions
            # The winner's decision, sent once whoever sends it: a loser's send delivers it
            # if the winner died before sending.
            await system().send_async(
                workflow_id,
                winner,
                DECISION_TOPIC,
                idempotency_key=decision_idempotency_key(d.call_id),
            )
        if not won:
            conflicts.append(DecisionConflictError(workflow_id, d.call_id, dict(winner)))
    if conflicts:
        raise conflicts[0]


async def get_pending_approvals(workflow_id: str) -> list[PendingApproval]:
    """The approvals one run is waiting on (empty when it waits on none).

    Args:
        workflow_id: The run's workflow id.

    Returns:
        One entry per pending tool call: ``workflow_id``, ``call_id``, ``tool_name``,
        ``arguments`` (JSON) and ``agent_name``.
    """
    published = await _published(workflow_id)
    decided = await winning_decisions(workflow_id, [p["call_id"] for p in published])
    return [p for p in published if p["call_id"] not in decided]


async def _published(workflow_id: str) -> list[PendingApproval]:
    """The calls the run published as waiting on: the run does not take a decided call off
    its list (that would be a step between the decision and the tool)."""
    value = await system().get_event_async(workflow_id, APPROVALS_EVENT, timeout_seconds=0)
    return list(value or [])


async def list_pending_approvals(*, session_id: str | None = None) -> list[dict[str, Any]]:
    """Every tool call waiting for a decision, across runs (newest first).

    Args:
        session_id: Only the calls of runs in this session.

    Returns:
        The tool-call records: ``workflow_id``, ``call_id``, ``session_id``, ``agent_name``,
        ``tool_name``, ``arguments``, ``status``, ``created_at``...
    """
    await flush_records()  # this process's interrupted runs, whose rows may be on their way
    t = tool_calls_table
    query = sa.select(t).where(t.c.status == "pending_approval").order_by(t.c.created_at.desc())
    if session_id is not None:
        query = query.where(t.c.session_id == session_id)
    engine = await tables_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [dict(row) for row in rows]
