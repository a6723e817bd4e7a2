"""Retention prunes the ledger of token limits and budgets, on SQLite and Postgres: a model
call's row goes once its reservation expired, it was reserved before the current month and its
run has ended (with the run, or later once the run is gone); a rate slot once it is free; a
provider's word on its limits once its resets passed; the lock row of a run's own budget once
the run is gone. Every row a limiter or a budget could still count stays, and a dry run
counts exactly what the pass then deletes.

Rows are those of real runs through the fake model wherever the present will do. A month
cannot pass in a test, so a real run's rows are moved back to last month (``_backdate``), and
rows that would need a past hour or a month's turn are inserted directly; each says so."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from agents import Agent, function_tool

import timestep
from timestep import collect_garbage, get_budgets, get_pending_approvals, run_agent
from timestep._core.ledger import period_start
from timestep._core.process import process_state
from timestep._core.retention import LEDGER_CLOCK_MARGIN_SECONDS
from timestep._core.runtime import tables_engine
from timestep._core.tables import (
    ledger_locks_table,
    model_calls_table,
    provider_feedback_table,
    rate_slots_table,
)
from timestep.errors import RunNotFoundError
from timestep.testing import function_call, text

USAGE = {"input_tokens": 20, "output_tokens": 180}
LEDGER = (model_calls_table, rate_slots_table, provider_feedback_table)


@pytest.fixture(autouse=True)
def _no_limits() -> Iterator[None]:
    yield
    process_state().limits.clear()


@function_tool(needs_approval=True)
def refund(order_id: str) -> str:
    """Refund an order (a human must approve)."""
    return f"refunded {order_id}"


async def _count(table: sa.Table, *where: Any) -> int:
    async with (await tables_engine()).connect() as conn:
        return int(
            await conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where)) or 0
        )


async def _counts() -> dict[str, int]:
    return {table.name: await _count(table) for table in LEDGER}


async def _calls(workflow_id: str) -> int:
    return await _count(model_calls_table, model_calls_table.c.workflow_id == workflow_id)


async def _insert(table: sa.Table, *rows: dict[str, Any]) -> None:
    async with (await tables_engine()).begin() as conn:
        await conn.execute(sa.insert(table), list(rows))


async def _keys(column: Any) -> set[Any]:
    async with (await tables_engine()).connect() as conn:
        return set((await conn.scalars(sa.select(column))).all())


async def _backdate(workflow_id: str, reserved_at: float) -> None:
    """Move a real run's model-call rows to ``reserved_at``, their holds as long as they were:
    a test cannot wait for the month to turn."""
    m = model_calls_table
    async with (await tables_engine()).begin() as conn:
        await conn.execute(
            sa.update(m)
            .where(m.c.workflow_id == workflow_id)
            .values(
                reserved_at=reserved_at, expires_at=reserved_at + m.c.expires_at - m.c.reserved_at
            )
        )


async def _exists(workflow_id: str) -> bool:
    try:
        await timestep.get_run(workflow_id)
        return True
    except RunNotFoundError:
        return False


async def _until(check: Any, what: str) -> None:
    for _ in range(1500):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


async def _spent(scope: str) -> int:
    (budget,) = [b for b in await get_budgets() if b.scope == scope]
    return budget.spent_tokens


@pytest.mark.usefixtures("own_durable")
async def test_gc_prunes_the_spent_ledger_and_keeps_what_limits_and_budgets_count(fake_model):
    tag = f"tenant-{uuid.uuid4().hex[:6]}"
    monthly = f"tag:{tag}"
    tokens, rate = f"tok{uuid.uuid4().hex[:6]}", f"rate{uuid.uuid4().hex[:6]}"
    timestep.limit_provider(tokens, tokens=100_000, per_seconds=60.0)
    timestep.limit_provider(rate, requests=100, per_seconds=30.0)
    await timestep.set_budget(monthly, max_tokens=1_000_000, per="month")
    plain = Agent(name="ledger-clerk", instructions="Answer.", model="gpt-4.1", tools=[refund])
    fake_model.set_default(text("ok", usage=USAGE))

    # This month's budgeted run: its row counts in the tenant's monthly budget.
    current = (await run_agent(plain, "hi", tags=[tag])).workflow_id
    # Another, whose row is moved to last month: no budget period under way counts it.
    old = (await run_agent(plain, "hi", tags=[tag])).workflow_id
    # A token-limited call whose response says what the provider has left (a live word on its
    # limits until its tokens reset, in 6 minutes), and whose row the limit holds for 60 s.
    fake_model.add_turns(
        text(
            "ok",
            usage=USAGE,
            headers={
                "x-ratelimit-remaining-requests": "59",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-remaining-tokens": "99000",
                "x-ratelimit-reset-tokens": "6m0s",
            },
        )
    )
    limited = Agent(name="ledger-limited", instructions="Answer.", model=f"{tokens}/gpt-4.1")
    held = (await run_agent(limited, "hi")).workflow_id
    # A rate-limited call: its slot cools down for 30 s (its permit, a child, with it).
    slotted = Agent(name="ledger-slotted", instructions="Answer.", model=f"{rate}/gpt-4.1")
    cooling = (await run_agent(slotted, "hi")).workflow_id
    await _until(lambda: _count(rate_slots_table), "the rate slot is handed on")
    # A run waiting for an approval, with a budget of its own (per run: no time bound); its
    # first call's row is moved to last month too, but its run has not ended.
    waiting_id = f"ledger-waiting-{uuid.uuid4().hex[:6]}"
    await timestep.set_budget(f"run:{waiting_id}", max_tokens=100_000, per="run")
    fake_model.add_turns(
        function_call("refund", {"order_id": "W1"}, call_id="call_w1", usage=USAGE)
    )
    waiting = await timestep.start_agent_run(
        plain, "refund W1", None, workflow_id=waiting_id, wait_for_approvals=True
    )
    await _until(lambda: get_pending_approvals(waiting.workflow_id), "the run waits")
    await timestep.flush_records()

    last_month = period_start("month", time.time()) - 86_400
    await _backdate(old, last_month)
    await _backdate(waiting_id, last_month)
    hour_ago = time.time() - 3600
    # Rows an hour old (inserted: a test cannot wait an hour). A slot of a queue with no call
    # since, which the permits' own clean-up never reaches, and a provider's word whose resets
    # passed long ago.
    await _insert(
        rate_slots_table,
        {
            "permit_id": "gone",
            "queue_name": "gone.rate",
            "handed_at": hour_ago,
            "free_at": hour_ago,
        },
    )
    await _insert(
        provider_feedback_table,
        {
            "key": "gone gpt-4.1",
            "observed_at": hour_ago - 360,
            "remaining_requests": 0,
            "requests_reset_at": hour_ago - 359,
            "remaining_tokens": 10,
            "tokens_reset_at": hour_ago,
        },
    )
    assert await _counts() == {
        "timestep_model_calls": 5,
        "timestep_rate_slots": 2,
        "timestep_provider_feedback": 2,
    }
    words = await _keys(provider_feedback_table.c.key)
    assert len(words) == 2 and "gone gpt-4.1" in words
    monthly_spent = await _spent(monthly)
    assert monthly_spent == 200  # the current run's; the old one's row is last month's
    assert await _spent(f"run:{waiting_id}") == 200

    now = datetime.now(UTC) + timedelta(seconds=1)
    before = await _counts()
    dry = await collect_garbage(older_than="0s", now=now, dry_run=True)
    assert await _counts() == before
    assert dry.rows["timestep_model_calls"] == 1  # the old run's, with its run
    assert dry.rows["timestep_rate_slots"] == 1 and dry.rows["timestep_provider_feedback"] == 1
    assert dry.ledger_bytes > 0 and dry.to_json()["ledger_bytes"] == dry.ledger_bytes

    report = await collect_garbage(older_than="0s", now=now)
    assert report.rows == dry.rows and report.ledger_bytes == dry.ledger_bytes
    assert report.bytes == dry.bytes
    # The finished runs went, but the one cooling down with its permit (a live child).
    assert report.runs == 3 and report.skipped == 1
    assert not await _exists(current) and not await _exists(old) and not await _exists(held)
    assert await _calls(old) == 0
    # This month's rows stay though their run went: the monthly budget still counts them.
    assert await _calls(current) == 1 and await _spent(monthly) == monthly_spent
    assert await _calls(held) == 1  # this month's, and held by the token limit for a minute
    assert await _calls(cooling) == 1  # its run lives on (its permit)
    # A run not ended keeps last month's row: its per-run budget counts it.
    assert await _calls(waiting_id) == 1 and await _spent(f"run:{waiting_id}") == 200
    assert await _count(rate_slots_table) == 1  # the slot cooling down, not the hour-old one
    # The provider's word on the token-limited call's model, not the hour-old one.
    assert await _keys(provider_feedback_table.c.key) == words - {"gone gpt-4.1"}

    # A month later (the current run's row moved back): its run is gone, so the sweep of rows
    # whose run no longer exists takes it; the waiting run's stays (its run exists).
    await _backdate(current, last_month)
    again_dry = await collect_garbage(older_than="3650d", now=now, dry_run=True)
    again = await collect_garbage(older_than="3650d", now=now)
    assert again.runs == again_dry.runs == 0
    assert again.rows["timestep_model_calls"] == again_dry.rows["timestep_model_calls"] == 1
    assert again.ledger_bytes == again_dry.ledger_bytes > 0
    assert await _calls(current) == 0 and await _calls(waiting_id) == 1
    assert (await collect_garbage(older_than="3650d", now=now)).rows["timestep_model_calls"] == 0

    await timestep.approve(waiting.workflow_id, "call_w1")
    assert (await waiting.result()).final_output == "ok"


@pytest.mark.usefixtures("own_durable")
async def test_gc_keeps_what_a_limiter_could_still_count_at_the_turn_of_a_month():
    """The pass dated 5 minutes into the current month (its own ``now``, earlier than the
    clock). The rows are inserted directly: they are of runs that ended at the month's turn
    (which a test cannot wait for) and that no longer exist."""
    start = period_start("month", time.time())
    now = datetime.fromtimestamp(start + 300, UTC)
    horizon = start + 300 - LEDGER_CLOCK_MARGIN_SECONDS

    def call(name: str, reserved_at: float, expires_at: float, settled: bool = True) -> dict:
        return {
            "call_id": f"{name}:1",
            "workflow_id": name,
            "tags": "",
            "estimate_tokens": 300,
            "tokens": 200,
            "settled": settled,
            "reserved_at": reserved_at,
            "expires_at": expires_at,
        }

    await _insert(
        model_calls_table,
        # Last month, expired long ago: spent.
        call("spent", start - 2000, start - 1100),
        # Last month, unsettled (its worker died): its reservation holds 15 minutes, still.
        call("unsettled", start - 120, start + 780, settled=False),
        # Last month and expired, but a provider's word of the last 10 minutes counts it.
        call("recent", start - 300, start - 240),
        # This month: the monthly budgets count it.
        call("this-month", start + 10, start + 20),
    )
    await _insert(
        rate_slots_table,
        {"permit_id": "free", "queue_name": "q.rate", "handed_at": start, "free_at": start + 1},
        # Free by the pass's clock, but not by a clock a minute behind.
        {
            "permit_id": "skewed",
            "queue_name": "q.rate",
            "handed_at": start,
            "free_at": horizon + 30,
        },
    )
    await _insert(
        provider_feedback_table,
        {"key": "p m1", "observed_at": start, "remaining_tokens": 5, "tokens_reset_at": start + 9},
        # Its requests reset passed, its tokens reset not yet (by a clock a minute behind).
        {
            "key": "p m2",
            "observed_at": start,
            "remaining_requests": 1,
            "requests_reset_at": start + 1,
            "remaining_tokens": 5,
            "tokens_reset_at": horizon + 30,
        },
    )
    dry = await collect_garbage(older_than="3650d", now=now, dry_run=True)
    report = await collect_garbage(older_than="3650d", now=now)
    assert (
        report.rows
        == dry.rows
        == {
            "timestep_rate_slots": 1,
            "timestep_provider_feedback": 1,
            "timestep_model_calls": 1,
        }
    )
    assert report.ledger_bytes == dry.ledger_bytes > 0
    assert await _keys(model_calls_table.c.workflow_id) == {"unsettled", "recent", "this-month"}
    assert await _keys(rate_slots_table.c.permit_id) == {"skewed"}
    assert await _keys(provider_feedback_table.c.key) == {"p m2"}


async def _lock_keys() -> set[str]:
    return await _keys(ledger_locks_table.c.key)


@pytest.mark.usefixtures("own_durable")
async def test_gc_drops_the_lock_rows_of_the_budgets_of_runs_gone(fake_model):
    """A budget of one run (scope ``run:<id>``) gives its run a row in
    ``timestep_ledger_locks``, which holds nothing but a counter: once the run is gone the row
    goes too. A live run's, a tag's budget's (one for all its runs) and a provider's (its 429
    back-off) stay; and a run under the same id again, its budget still set, gets its lock row
    back from its first admission."""
    tag, provider = f"tenant-{uuid.uuid4().hex[:6]}", f"lock{uuid.uuid4().hex[:6]}"
    gone, live = f"ledger-gone-{uuid.uuid4().hex[:6]}", f"ledger-live-{uuid.uuid4().hex[:6]}"
    for scope in (f"run:{gone}", f"run:{live}", f"tag:{tag}"):
        await timestep.set_budget(scope, max_tokens=100_000, per="run")
    timestep.limit_provider(provider)
    fake_model.set_default(text("ok", usage=USAGE))
    plain = Agent(name="ledger-locks", instructions="Answer.", model="gpt-4.1", tools=[refund])
    limited = Agent(name="ledger-locks-limited", instructions="Answer.", model=f"{provider}/m")

    await run_agent(plain, "hi", workflow_id=gone, tags=[tag])
    await run_agent(limited, "hi")
    fake_model.add_turns(
        function_call("refund", {"order_id": "L1"}, call_id="call_l1", usage=USAGE)
    )
    waiting = await timestep.start_agent_run(
        plain, "refund L1", None, workflow_id=live, wait_for_approvals=True
    )
    await _until(lambda: get_pending_approvals(live), "the run waits")
    kept = {f"budget:run:{live}", f"budget:tag:{tag}", f"provider:{provider}"}
    assert await _lock_keys() == kept | {f"budget:run:{gone}"}

    now = datetime.now(UTC) + timedelta(seconds=1)
    dry = await collect_garbage(older_than="0s", now=now, dry_run=True)
    assert await _lock_keys() == kept | {f"budget:run:{gone}"}
    report = await collect_garbage(older_than="0s", now=now)
    assert dry.rows["timestep_ledger_locks"] == report.rows["timestep_ledger_locks"] == 1
    assert not await _exists(gone)
    assert await _lock_keys() == kept
    again = await collect_garbage(older_than="0s", now=now)
    assert "timestep_ledger_locks" not in again.rows

    # A run under the id again: its budget still holds it, and its admission locks it again.
    await run_agent(plain, "hi", workflow_id=gone)
    assert await _lock_keys() == kept | {f"budget:run:{gone}"}

    await timestep.approve(live, "call_l1")
    assert (await waiting.result()).final_output == "ok"
