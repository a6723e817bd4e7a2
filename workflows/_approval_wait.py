"""Durable human-in-the-loop: an interrupted run waits inside its workflow for decisions.

The workflow publishes its pending approvals as a DBOS event, saves an ``interrupted``
snapshot, and receives decisions as DBOS messages; both survive restarts of the worker and
of whoever decides. The published list stays as it is once the decisions are in (clearing it
would be one more step between ``approve()`` and the approved tool): readers leave out the
calls that have a decision. Decisions go through the SDK's own ``RunState.approve`` / ``reject``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from agents import RunState
from agents.items import ToolApprovalItem
from agents.run_state import CURRENT_SCHEMA_VERSION
from dbos import DBOS

from timestep._core.decisions import RUN_DECISION_PREFIX, claim_decision
from timestep._core.protocol import (
    APPROVALS_EVENT,
    DECISION_TOPIC,
    ApprovalPolicy,
    Decision,
    PendingApproval,
    wait_snapshot_id,
)
from timestep._core.runtime import tables_engine
from timestep._core.state_rows import stored_forms
from timestep._core.tables import (
    insert_ignoring_duplicates,
    run_states_table,
    tool_calls_table,
    upsert,
)
from timestep.errors import ApprovalTimeoutError
from timestep.steps import CurrentRun

__all__ = ["wait_for_decisions"]

_FOREVER_CHUNK_SEC = 24 * 3600.0
_TAKEN_GRACE_SEC = 30.0
_TOOL_CALL_KEY = ("workflow_id", "call_id")

logger = logging.getLogger("timestep")


def pending_of(run: CurrentRun, items: list[ToolApprovalItem]) -> list[PendingApproval]:
    return [
        {
            "workflow_id": run.workflow_id,
            "call_id": _call_id(item),
            "tool_name": item.tool_name or "",
            "arguments": item.arguments,
            "agent_name": item.agent.name,
        }
        for item in items
    ]


async def wait_for_decisions(
    run: CurrentRun,
    state: RunState[Any],
    interruptions: list[ToolApprovalItem],
    policy: ApprovalPolicy,
    round_index: int,
    *,
    clear_published: bool,
) -> None:
    """Publish ``interruptions``, then apply decisions to ``state`` until none is pending;
    with ``clear_published`` (runs started by earlier versions), publish an empty list then."""
    pending = {_call_id(item): item for item in interruptions}
    await _save_snapshot(run, state, round_index)
    await DBOS.set_event_async(APPROVALS_EVENT, pending_of(run, interruptions))
    timeout = policy.get("timeout_seconds")
    waited_from = time.time_ns()
    while pending:
        decision: Decision | None = await DBOS.recv_async(
            DECISION_TOPIC, timeout_seconds=timeout if timeout else _FOREVER_CHUNK_SEC
        )
        if decision is None:
            if not timeout:
                continue
            on_timeout = policy.get("on_timeout", "reject")
            if on_timeout == "wait":
                continue
            # The timeout decides each call still pending, first-wins against deciders: a
            # call a decider took meanwhile gets its decision (its message may be on its way).
            stamp = _now(run)
            taken: dict[str, Decision] = {}
            for call_id in list(pending):
                decision_ = Decision(
                    call_id=call_id,
                    approve=False,
                    message=f"Tool call was not approved within {timeout:g} seconds.",
                    by="timeout",
                    at=stamp,
                )
                won, winner, _ = await DBOS.run_step_async(
                    {"name": "approval:timeout"},
                    claim_decision,
                    run.workflow_id,
                    decision_,
                    f"{RUN_DECISION_PREFIX}{call_id}",
                )
                if won and on_timeout == "reject":
                    _trace_wait(run, pending[call_id], winner, waited_from)
                    _apply(state, pending.pop(call_id), winner)
                    _record_decision_soon(run, winner)
                elif not won:
                    taken[call_id] = winner
            if on_timeout == "fail" and not taken:
                raise ApprovalTimeoutError(
                    f"run {run.workflow_id} waited {timeout:g}s for approval of "
                    f"{', '.join(sorted(pending))}"
                )
            await _receive_taken(run, state, pending, taken)
            if pending:  # "fail", with calls a decider took before the timeout
                raise ApprovalTimeoutError(
                    f"run {run.workflow_id} waited {timeout:g}s for approval of "
                    f"{', '.join(sorted(pending))}"
                )
            break
        item = pending.pop(decision.get("call_id", ""), None)
        if item is None:
            logger.warning(
                "run %s: ignoring a decision for %r, which is not pending",
                run.workflow_id,
                decision.get("call_id"),
            )
            continue
        _trace_wait(run, item, decision, waited_from)
        _apply(state, item, decision)
        _record_decision_soon(run, decision)
    if clear_published:
        await DBOS.set_event_async(APPROVALS_EVENT, [])


async def _receive_taken(
    run: CurrentRun,
    state: RunState[Any],
    pending: dict[str, ToolApprovalItem],
    taken: dict[str, Decision],
) -> None:
    """Apply the decisions deciders took just before the timeout, consuming their messages
    (each sent once, right after its row); one not come within a grace period is applied
    from its row."""
    waiting = dict(taken)
    while waiting:
        decision: Decision | None = await DBOS.recv_async(
            DECISION_TOPIC, timeout_seconds=_TAKEN_GRACE_SEC
        )
        if decision is None:
            break
        waiting.pop(decision.get("call_id", ""), None)
    for call_id, winner in taken.items():
        item = pending.pop(call_id, None)
        if item is not None:
            _trace_wait(run, item, winner, None)
            _apply(state, item, winner)
            _record_decision_soon(run, winner)


def _trace_wait(
    run: CurrentRun, item: ToolApprovalItem, decision: Decision, waited_from: int | None
) -> None:
    """The wait for ``decision`` as a span of the run's trace, from when this process began
    waiting (a wait that began in a killed worker is lost with it) until the decision came."""
    if run.trace is None:
        return
    now = time.time_ns()
    run.trace.defer(
        "timestep.approval_wait",
        waited_from if waited_from is not None else now,
        now,
        {
            "gen_ai.tool.name": item.tool_name or "",
            "gen_ai.tool.call.id": _call_id(item),
            "timestep.approval.decision": "approve" if decision.get("approve") else "reject",
            "timestep.approval.by": decision.get("by"),
            "timestep.approval.decided_at": decision.get("at"),
            "timestep.workflow_id": run.workflow_id,
        },
    )


def _apply(state: RunState[Any], item: ToolApprovalItem, decision: Decision) -> None:
    if decision.get("approve"):
        state.approve(item, always_approve=bool(decision.get("always")))
    else:
        state.reject(
            item,
            always_reject=bool(decision.get("always")),
            rejection_message=decision.get("message"),
        )


def _call_id(item: ToolApprovalItem) -> str:
    raw = item.raw_item
    value = raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", None)
    return str(value or getattr(raw, "id", "") or "")


def _now(run: CurrentRun) -> str:
    return datetime.now(UTC).isoformat()


async def _save_snapshot(run: CurrentRun, state: RunState[Any], round_index: int) -> None:
    engine = await tables_engine()
    row: dict[str, Any] = {
        "state_id": wait_snapshot_id(run.workflow_id, round_index),
        "session_id": run.session_id or f"workflow:{run.workflow_id}",
        "agent_name": run.agent_name,
        "workflow_id": run.workflow_id,
        "state_type": "interrupted",
        "schema_version": CURRENT_SCHEMA_VERSION,
        "format": "python",
    }
    row["payload"], row["payload_typescript"] = stored_forms(state.to_string())
    async with engine.begin() as conn:
        await insert_ignoring_duplicates(conn, run_states_table, [row])
        pending = [
            {
                "workflow_id": run.workflow_id,
                "call_id": _call_id(item),
                "session_id": run.session_id,
                "agent_name": item.agent.name,
                "tool_name": item.tool_name or "",
                "arguments": item.arguments,
                "status": "pending_approval",
            }
            for item in state.get_interruptions()
        ]
        await upsert(conn, tool_calls_table, pending, list(_TOOL_CALL_KEY), ["status"])


def _record_decision_soon(run: CurrentRun, decision: Decision) -> None:
    """Record the decision while the run goes on: the approved tool need not wait for the
    row (a replay records it again, as it would have anyway: the write is not a step)."""
    run.writes.append(asyncio.ensure_future(_record_decision(run, decision)))


async def _record_decision(run: CurrentRun, decision: Decision) -> None:
    engine = await tables_engine()
    decided_at = decision.get("at")
    row = {
        "workflow_id": run.workflow_id,
        "call_id": decision["call_id"],
        "tool_name": "",
        "status": "approved" if decision.get("approve") else "rejected",
        "decision": json.dumps(
            {
                "approve": bool(decision.get("approve")),
                "always": bool(decision.get("always")),
                "message": decision.get("message"),
            }
        ),
        "decided_by": decision.get("by"),
        "decided_at": datetime.fromisoformat(decided_at) if decided_at else None,
    }
    async with engine.begin() as conn:
        await upsert(
            conn,
            tool_calls_table,
            [row],
            list(_TOOL_CALL_KEY),
            ["status", "decision", "decided_by", "decided_at"],
        )
