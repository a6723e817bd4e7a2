"""Spend budgets for a run, a session, an agent or a tag, held across every worker.

``set_budget`` writes the budget to the database; every worker that enforces budgets checks
it before each durable model call, in the same transaction that records the call's estimate
in the ledger of model calls (``timestep._core.ledger``). A call that would pass a budget is
not made: its run fails with ``BudgetExceededError``, its state kept, and ``resume_run`` tries
the call again (raise the budget, or wait for the next day or month).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from timestep._core import ledger
from timestep._core.process import process_state
from timestep._core.runtime import current_database

__all__ = ["BudgetStatus", "get_budgets", "remove_budget", "set_budget"]


@dataclass(frozen=True)
class BudgetStatus:
    """A budget and what its scope spent in the current period, as ``get_budgets`` gives it.

    Attributes:
        scope: ``"run:<workflow id>"``, ``"session:<id>"``, ``"agent:<name>"`` or
            ``"tag:<tag>"``.
        per: ``"run"``, ``"day"`` or ``"month"`` (UTC).
        max_tokens: The token cap, or None.
        max_cost_usd: The cost cap in USD, or None.
        spent_tokens: Tokens of the current period (``per="run"``: of every run in the scope,
            summed).
        spent_cost_usd: Cost in USD of the current period, counted as ``spent_tokens`` is.
        on_exceed: ``"stop"`` (the run fails, resumable) or ``"wait"`` (the call waits).
    """

    scope: str
    per: str
    max_tokens: int | None
    max_cost_usd: float | None
    spent_tokens: int
    spent_cost_usd: float
    on_exceed: str = "stop"


async def set_budget(
    scope: str,
    *,
    max_cost_usd: float | None = None,
    max_tokens: int | None = None,
    per: Literal["run", "day", "month"] = "run",
    on_exceed: Literal["stop", "wait"] = "stop",
    database_url: str | None = None,
) -> None:
    """Cap the spend of ``scope``: ``"run:<workflow id>"``, ``"session:<id>"``,
    ``"agent:<name>"`` or ``"tag:<tag>"`` (a tag given to runs with ``run_agent(..., tags=)``).

    ``per="run"``: each run in the scope has the budget to itself; ``"day"`` / ``"month"``: the
    scope's runs share it for the UTC day or month. A call that would pass it is not made: with
    ``on_exceed="stop"`` its run fails with ``BudgetExceededError`` (resumable), with ``"wait"``
    the call waits, durably, until it fits (a raised budget, seen within 5 s, or the next
    period). Calling it again replaces the budget. Budgets apply to the runs started after the
    first one exists: at once in this process, within 5 s in the others (a run started
    before keeps the steps it started with, so that any worker can replay it).

    Args:
        scope: What the budget caps, e.g. ``"agent:Assistant"``.
        max_cost_usd: The cap in USD (priced with ``set_price``'s table), or None.
        max_tokens: The cap in tokens (input plus output), or None.
        per: ``"run"``, ``"day"`` or ``"month"``.
        on_exceed: ``"stop"`` or ``"wait"``.
        database_url: The database holding the budget (default: this process's).
    """
    process = process_state()
    engine = await process.engines.get(database_url or current_database().url)
    await ledger.upsert_budget(
        engine,
        scope,
        max_cost_usd=max_cost_usd,
        max_tokens=max_tokens,
        per=per,
        on_exceed=on_exceed,
    )
    process.budgets_enforced = True


async def remove_budget(scope: str, *, database_url: str | None = None) -> bool:
    """Remove ``scope``'s budget.

    Args:
        scope: The budget's scope, as given to ``set_budget``.
        database_url: The database holding the budget (default: this process's).

    Returns:
        Whether there was one.
    """
    engine = await process_state().engines.get(database_url or current_database().url)
    return await ledger.delete_budget_row(engine, scope)


async def get_budgets(*, database_url: str | None = None) -> list[BudgetStatus]:
    """Every budget with what its scope spent so far in its period (calls in flight at their
    estimate).

    Args:
        database_url: The database holding the budgets (default: this process's).

    Returns:
        One status per budget.
    """
    engine = await process_state().engines.get(database_url or current_database().url)
    now = time.time()
    out = []
    async with engine.connect() as conn:
        for row in await ledger.budget_rows(conn):
            tokens, cost = await ledger.scope_spend(conn, row.scope, row.per, now)
            out.append(
                BudgetStatus(
                    scope=row.scope,
                    per=row.per,
                    max_tokens=row.max_tokens,
                    max_cost_usd=row.max_cost_usd,
                    spent_tokens=tokens,
                    spent_cost_usd=cost,
                    on_exceed=row.on_exceed,
                )
            )
    return out
