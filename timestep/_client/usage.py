"""Recorded usage and cost, summed per run, per agent or per session.

Every durable model call leaves a row in ``timestep_usage`` (tokens, model, and its cost from
the price table at the time of the call); these queries add them up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa

from timestep._core.process import process_state
from timestep._core.runtime import current_database, flush_records
from timestep._core.tables import usage_daily_table, usage_table

__all__ = ["UsageSummary", "get_usage", "usage_by", "usage_of_runs"]


@dataclass(frozen=True)
class UsageSummary:
    """Tokens and cost of a set of model calls, as ``get_usage`` sums them."""

    requests: int = 0
    """Model requests made."""
    input_tokens: int = 0
    """Input tokens, cached ones included."""
    output_tokens: int = 0
    """Output tokens, reasoning ones included."""
    cached_tokens: int = 0
    """Input tokens served from the provider's cache."""
    reasoning_tokens: int = 0
    """Output tokens spent reasoning."""
    cost_usd: float | None = None
    """``None`` when no call had a known price (a model missing from the price table)."""


async def get_usage(
    *,
    workflow_id: str | None = None,
    agent_name: str | None = None,
    session_id: str | None = None,
    tag: str | None = None,
    since: datetime | None = None,
    database_url: str | None = None,
) -> UsageSummary:
    """Tokens and cost of the model calls that match every filter given (all calls if none):
    a run, an agent, a session, a tag given to runs (``run_agent(..., tags=[...])``), calls
    made since a moment. Finished runs' calls; ``get_budgets`` has the spend of runs in flight.

    >>> await get_usage(session_id="support-42")  # doctest: +SKIP
    UsageSummary(requests=6, input_tokens=5120, output_tokens=410, ..., cost_usd=0.0135)

    Args:
        workflow_id: Only this run's calls.
        agent_name: Only this agent's calls.
        session_id: Only calls of runs in this session.
        tag: Only calls of runs with this tag.
        since: Only calls made at or after this time.
        database_url: The database holding the records (default: this process's).

    Returns:
        The sums (cost over the calls with a known price).
    """
    await flush_records()  # this process's finished runs, whose rows may still be on their way
    t = usage_table
    query = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(t.c.requests), 0),
        sa.func.coalesce(sa.func.sum(t.c.input_tokens), 0),
        sa.func.coalesce(sa.func.sum(t.c.output_tokens), 0),
        sa.func.coalesce(sa.func.sum(t.c.cached_tokens), 0),
        sa.func.coalesce(sa.func.sum(t.c.reasoning_tokens), 0),
        sa.func.sum(t.c.cost_usd),
    )
    for column, value in (
        (t.c.workflow_id, workflow_id),
        (t.c.agent_name, agent_name),
        (t.c.session_id, session_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if tag is not None:
        query = query.where(t.c.tags.contains(f",{tag},", autoescape=True))
    if since is not None:
        query = query.where(t.c.created_at >= since)
    engine = await process_state().engines.get(database_url or current_database().url)
    async with engine.connect() as conn:
        rows, requests, input_tokens, output_tokens, cached, reasoning, cost = (
            await conn.execute(query)
        ).one()
        priced = 1 if cost is not None else 0
        if workflow_id is None and session_id is None:
            # Runs that retention deleted left their usage summed per day, agent and model.
            d = usage_daily_table
            daily = sa.select(
                sa.func.count(),
                *(
                    sa.func.coalesce(sa.func.sum(c), 0)
                    for c in (
                        d.c.requests,
                        d.c.input_tokens,
                        d.c.output_tokens,
                        d.c.cached_tokens,
                        d.c.reasoning_tokens,
                        d.c.cost_usd,
                        d.c.priced_rows,
                    )
                ),
            )
            if agent_name is not None:
                daily = daily.where(d.c.agent_name == agent_name)
            d_rows, d_req, d_in, d_out, d_cached, d_reason, d_cost, d_priced = (
                await conn.execute(daily)
            ).one()
            rows += d_rows
            requests, input_tokens, output_tokens = (
                requests + d_req,
                input_tokens + d_in,
                output_tokens + d_out,
            )
            cached, reasoning = cached + d_cached, reasoning + d_reason
            if d_priced:
                cost, priced = float(cost or 0.0) + float(d_cost), priced + int(d_priced)
    if not rows:
        return UsageSummary()
    return UsageSummary(
        requests=int(requests),
        input_tokens=int(input_tokens),
        output_tokens=int(output_tokens),
        cached_tokens=int(cached),
        reasoning_tokens=int(reasoning),
        cost_usd=float(cost) if priced else None,
    )


def _sums(t: sa.Table) -> list[sa.ColumnElement[object]]:
    return [
        sa.func.coalesce(sa.func.sum(t.c.requests), 0),
        sa.func.coalesce(sa.func.sum(t.c.input_tokens), 0),
        sa.func.coalesce(sa.func.sum(t.c.output_tokens), 0),
        sa.func.coalesce(sa.func.sum(t.c.cached_tokens), 0),
        sa.func.coalesce(sa.func.sum(t.c.reasoning_tokens), 0),
        sa.func.sum(t.c.cost_usd),
    ]


def _summary(row: Sequence[object]) -> UsageSummary:
    requests, input_tokens, output_tokens, cached, reasoning, cost = row
    return UsageSummary(
        requests=int(str(requests)),
        input_tokens=int(str(input_tokens)),
        output_tokens=int(str(output_tokens)),
        cached_tokens=int(str(cached)),
        reasoning_tokens=int(str(reasoning)),
        cost_usd=float(str(cost)) if cost is not None else None,
    )


async def usage_of_runs(workflow_ids: Sequence[str]) -> dict[str, UsageSummary]:
    """Tokens and cost of each of these runs (a page of a runs listing), in one query; runs
    that made no recorded model call are left out."""
    if not workflow_ids:
        return {}
    await flush_records()
    t = usage_table
    query = (
        sa.select(t.c.workflow_id, *_sums(t))
        .where(t.c.workflow_id.in_(list(workflow_ids)))
        .group_by(t.c.workflow_id)
    )
    engine = await process_state().engines.get(current_database().url)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {str(row[0]): _summary(tuple(row[1:])) for row in rows}


async def usage_by(
    key: Literal["day", "agent", "model"], *, limit: int = 60
) -> list[tuple[str, UsageSummary]]:
    """Tokens and cost summed per day (newest first, the last ``limit`` days with calls), per
    agent or per model (the costliest first)."""
    await flush_records()
    t = usage_table
    column: sa.ColumnElement[object]
    if key == "day":
        # The UTC date of the call: SQLite's date() and Postgres' cast, as text.
        column = (
            sa.func.date(t.c.created_at)
            if current_database().is_sqlite
            else sa.cast(sa.cast(t.c.created_at, sa.Date), sa.String)
        )
    else:
        column = t.c.agent_name if key == "agent" else t.c.model
    grouped = sa.select(column.label("key"), *_sums(t)).group_by(column)
    if key == "day":
        query = grouped.order_by(column.desc()).limit(limit)
    else:
        query = grouped.order_by(
            sa.func.coalesce(sa.func.sum(t.c.cost_usd), 0).desc(),
            sa.func.sum(t.c.input_tokens + t.c.output_tokens).desc(),
        ).limit(limit)
    engine = await process_state().engines.get(current_database().url)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        (str(row[0]) if row[0] is not None else "(unknown)", _summary(tuple(row[1:])))
        for row in rows
    ]
