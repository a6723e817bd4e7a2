"""First-wins approval decisions: one row per tool call in ``timestep_decisions``.

Whoever inserts a call's row first (a decider in any process, or the waiting run on its
approval timeout) decides it; the database's primary key makes that exactly-once across
processes, on SQLite and Postgres. The decision then travels to the run as a DBOS message
sent with an idempotency key per call, so it is delivered once however many deciders (or
retries of one) send it: a decider that finds another's row re-sends that one, which also
delivers a winner whose process died between its insert and its send.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from .protocol import Decision
from .runtime import tables_engine
from .tables import decisions_table, insert_ignoring_duplicates

__all__ = [
    "RUN_DECISION_PREFIX",
    "claim_decision",
    "decision_idempotency_key",
    "winning_decisions",
]

RUN_DECISION_PREFIX = "timeout:"
"""The ``decision_id`` prefix of the decisions a run takes itself (on its approval timeout);
those are applied by the run and never sent to it."""


def decision_idempotency_key(call_id: str) -> str:
    """The DBOS idempotency key of a call's decision message (DBOS scopes it per run)."""
    return f"timestep.decision:{call_id}"


def _decision_of(row: Any) -> Decision:
    return Decision(
        call_id=row.call_id,
        approve=bool(row.approve),
        always=bool(row.always),
        message=row.message,
        by=row.decided_by,
        at=row.decided_at,
    )


async def claim_decision(
    workflow_id: str, decision: Decision, decision_id: str
) -> tuple[bool, Decision, bool]:
    """Insert ``decision`` as its call's decision unless the call has one. Returns whether
    it won (this ``decision_id``'s row is the one stored), the decision that did, and whether
    that one is the run's own (its timeout), which is not sent to it."""
    row = {
        "workflow_id": workflow_id,
        "call_id": decision["call_id"],
        "decision_id": decision_id,
        "approve": bool(decision.get("approve")),
        "always": bool(decision.get("always")),
        "message": decision.get("message"),
        "decided_by": decision.get("by"),
        "decided_at": decision.get("at") or "",
    }
    t = decisions_table
    engine = await tables_engine()
    async with engine.begin() as conn:
        await insert_ignoring_duplicates(conn, t, [row])
        stored = (
            await conn.execute(
                sa.select(t).where(
                    t.c.workflow_id == workflow_id, t.c.call_id == decision["call_id"]
                )
            )
        ).one()
    by_run = str(stored.decision_id).startswith(RUN_DECISION_PREFIX)
    return stored.decision_id == decision_id, _decision_of(stored), by_run


async def winning_decisions(workflow_id: str, call_ids: Iterable[str]) -> dict[str, Decision]:
    """The decisions already taken on ``call_ids`` of a run, by call id."""
    wanted = list(call_ids)
    if not wanted:
        return {}
    t = decisions_table
    engine = await tables_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(t).where(t.c.workflow_id == workflow_id, t.c.call_id.in_(wanted))
        )
        return {row.call_id: _decision_of(row) for row in rows}
