"""What ``/metrics`` reports, read from the database on each scrape, so every process sharing
it reports the same cluster-wide numbers: runs by status, pending approvals, queue depths,
step latencies by kind (from DBOS's step records), tokens and cost by provider and model
(from Timestep's usage rows and the daily sums retention leaves).

Step latencies are those of the steps still stored: retention bounds them (and deleting runs
lowers the counts, which Prometheus reads as a counter reset).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from timestep._core.protocol import AGENT_RUN_WORKFLOW, PERMIT_WORKFLOW
from timestep._core.runtime import dbos_table, flush_records, tables_engine
from timestep._core.tables import tool_calls_table, usage_daily_table, usage_table

__all__ = ["LATENCY_BUCKETS", "MetricsSnapshot", "UsageTotals", "read_metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds (seconds) of the step latency histogram's buckets."""

_STEP_KINDS = (("model", "model:%"), ("tool", "tool:%"))


@dataclass
class UsageTotals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class StepLatency:
    count: int
    total_seconds: float
    buckets: list[int]
    """Cumulative counts, one per ``LATENCY_BUCKETS`` bound."""


@dataclass
class MetricsSnapshot:
    runs: dict[str, int] = field(default_factory=dict)
    pending_approvals: int = 0
    queue_depth: dict[str, int] = field(default_factory=dict)
    steps: dict[str, StepLatency] = field(default_factory=dict)
    limiter_waits: dict[str, StepLatency] = field(default_factory=dict)
    """How long model calls waited for a limited provider's permits, by permit queue."""
    usage: dict[tuple[str, str], UsageTotals] = field(default_factory=dict)
    """By (provider, model)."""


def provider_of(model: str) -> str:
    """``ollama/llama3`` -> ``ollama``; a bare name is OpenAI's (as the provider routes it)."""
    return model.split("/", 1)[0] if "/" in model else ("openai" if model else "")


async def read_metrics() -> MetricsSnapshot:
    await flush_records()  # this process's finished runs' rows
    snapshot = MetricsSnapshot()
    status = dbos_table(
        "workflow_status",
        "workflow_uuid",
        "status",
        "name",
        "queue_name",
        integer=("created_at", "started_at_epoch_ms"),
    )
    steps = dbos_table(
        "operation_outputs",
        "workflow_uuid",
        "function_name",
        integer=("started_at_epoch_ms", "completed_at_epoch_ms"),
    )
    engine = await tables_engine()
    async with engine.connect() as conn:
        for name, count in await conn.execute(
            sa.select(status.c.status, sa.func.count())
            .where(status.c.name == AGENT_RUN_WORKFLOW)
            .group_by(status.c.status)
        ):
            snapshot.runs[str(name)] = int(count)
        for queue, count in await conn.execute(
            sa.select(status.c.queue_name, sa.func.count())
            .where(status.c.status == "ENQUEUED", status.c.queue_name.is_not(None))
            .group_by(status.c.queue_name)
        ):
            snapshot.queue_depth[str(queue)] = int(count)
        t = tool_calls_table
        snapshot.pending_approvals = int(
            (
                await conn.execute(
                    sa.select(sa.func.count()).where(t.c.status == "pending_approval")
                )
            ).scalar_one()
        )
        seconds = (steps.c.completed_at_epoch_ms - steps.c.started_at_epoch_ms) / 1000.0
        for kind, pattern in _STEP_KINDS:
            row = (
                await conn.execute(
                    sa.select(*_histogram_columns(seconds)).where(
                        steps.c.function_name.like(pattern),
                        steps.c.started_at_epoch_ms.is_not(None),
                        steps.c.completed_at_epoch_ms.is_not(None),
                    )
                )
            ).one()
            snapshot.steps[kind] = _latency(row)
        # A permit's wait: from its enqueueing (the call asked) to its start (DBOS's queue
        # handed it out); cooldowns after the hand-out are the rate limit's own spacing.
        waited = (status.c.started_at_epoch_ms - status.c.created_at) / 1000.0
        for queue, *counts in await conn.execute(
            sa.select(status.c.queue_name, *_histogram_columns(waited))
            .where(status.c.name == PERMIT_WORKFLOW, status.c.started_at_epoch_ms.is_not(None))
            .group_by(status.c.queue_name)
        ):
            snapshot.limiter_waits[str(queue)] = _latency(counts)
        sums = ("requests", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
        for table in (usage_table, usage_daily_table):
            query = sa.select(
                table.c.model,
                *(sa.func.coalesce(sa.func.sum(table.c[c]), 0) for c in sums),
                sa.func.coalesce(sa.func.sum(table.c.cost_usd), 0),
            ).group_by(table.c.model)
            for model, *values in await conn.execute(query):
                key = (provider_of(model or ""), model or "")
                totals = snapshot.usage.setdefault(key, UsageTotals())
                for name, value in zip(sums, values[:-1], strict=True):
                    setattr(totals, name, getattr(totals, name) + int(value))
                totals.cost_usd += float(values[-1])
    return snapshot


def _histogram_columns(seconds: Any) -> list[Any]:
    """count, sum and the cumulative bucket counts of ``seconds``, as SQL aggregates."""
    return [
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(seconds), 0),
        *(
            sa.func.coalesce(sa.func.sum(sa.case((seconds <= bound, 1), else_=0)), 0)
            for bound in LATENCY_BUCKETS
        ),
    ]


def _latency(row: Any) -> StepLatency:
    return StepLatency(
        count=int(row[0]), total_seconds=float(row[1]), buckets=[int(v) for v in row[2:]]
    )
