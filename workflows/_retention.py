"""The retention pass: ``TIMESTEP_RETENTION`` applied by a DBOS schedule.

DBOS fires the schedule once per period with a deterministic workflow id, so one pass runs
however many workers share the database. Each batch is a DBOS step (its counts recorded), so
a pass killed half-way goes on after its last finished batch when it is recovered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dbos import DBOS

from timestep._core.process import process_state
from timestep._core.protocol import RETENTION_WORKFLOW
from timestep._core.retention import GcReport, gc_batch, policy_parts
from timestep._core.retention_policy import RetentionPolicy
from timestep._core.runtime import dbos_schema, tables_engine

__all__ = ["retention_pass"]


async def _batch(
    part: str, age_seconds: float | None, now: str, cursor: Any, batch_size: int
) -> dict[str, Any]:
    return await gc_batch(
        DBOS,  # type: ignore[arg-type]  # its classmethods are the protocol's
        await tables_engine(),
        part,
        timedelta(seconds=age_seconds) if age_seconds is not None else None,
        now=datetime.fromisoformat(now),
        cursor=cursor,
        batch_size=batch_size,
        dry_run=False,
        dbos_schema=dbos_schema(),
    )


@DBOS.workflow(name=RETENTION_WORKFLOW)
async def retention_pass(scheduled_at: datetime, context: dict[str, Any]) -> dict[str, Any]:
    """Delete what ``context["policy"]`` (``RetentionPolicy.to_json``) says is expired at
    ``scheduled_at``; returns the pass's ``GcReport`` as JSON."""
    policy = RetentionPolicy.from_json(context["policy"])
    batch_size = int(context.get("batch_size") or 500)
    report = GcReport()
    for part, age in policy_parts(policy):
        cursor: Any = None
        while True:
            batch = await DBOS.run_step_async(
                {"name": f"retention:{part}"},
                _batch,
                part,
                age.total_seconds() if age is not None else None,
                scheduled_at.isoformat(),
                cursor,
                batch_size,
            )
            report.add(batch)
            cursor = batch["cursor"]
            if batch["done"]:
                break
    DBOS.logger.info("retention pass at %s: %s", scheduled_at.isoformat(), report.to_json())
    return report.to_json()


process_state().workflow_functions[RETENTION_WORKFLOW] = retention_pass  # scheduled at launch
