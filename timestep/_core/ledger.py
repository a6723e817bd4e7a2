"""The ledger of model calls: token limits and spend budgets that hold across every worker.

A durable model call guarded by a token limit (``limit_provider(..., tokens=N)``) or checked
against budgets (``set_budget``) has one row in ``timestep_model_calls``. The row is written
by ``admit`` before the call is made, holding the call's *estimate* (``estimate_call_tokens``),
and ``settle`` rewrites it to the call's real usage once the call returned.

Exactness: ``admit`` runs in one transaction whose first write updates the lock row of every
limit and budget it then reads (``timestep_ledger_locks``, an INSERT ... ON CONFLICT DO
UPDATE). Postgres holds those row locks until the commit, and each later statement (READ
COMMITTED) sees every admission committed before the lock was granted; on SQLite the write
takes the database's write lock (the driver begins the transaction at that first write, and a
WAL write transaction reads the latest commit), so no other admission commits in between.
Either way the admissions of one limit or budget, from every process, run one after another.
Only the budgets' own definitions are read before the lock.

- Token limit: a row holds its tokens from its admission until ``per_seconds`` after its call
  ended. A call is admitted only if the tokens held by the rows not yet expired plus its own
  estimate are at most ``N``. Every request of a window of ``per_seconds`` is sent after its
  row was admitted and before its call ended, so all of them still hold their tokens at the
  window's last request: no window sees more than ``N`` tokens at the provider, as long as
  each call's real usage is at most its estimate (a call that used more holds more from its
  settlement on, so the excess delays the calls after it, but it can pass ``N`` in a window).
- Budgets: a call is admitted only if the spend of each budget's scope (settled calls at their
  real usage and cost, calls in flight at their estimate) plus the call's estimate stays within
  the budget; otherwise ``BudgetExceededError``, before the model is asked, or (``on_exceed=
  "wait"``) the call waits: it looks again every ``BUDGET_RECHECK_SECONDS``.

- Provider feedback (every limited provider, ``limit_provider(prefix)`` with or without
  numbers): what the provider's newest response for a model said of that model's limits
  (``record_feedback``: ``x-ratelimit-remaining-requests`` / ``-tokens`` and their
  ``x-ratelimit-reset-*``, kept in ``timestep_provider_feedback``, one row per provider and
  model as OpenAI counts them) holds until its reset. A call is admitted only if the model's
  calls admitted since that response, plus this one, stay within the remaining requests, and
  their tokens (estimates, or real usage once settled) plus this call's estimate within the
  remaining tokens; else it waits for the reset. A 429 blocks every admission of the provider
  (all its models) until its ``Retry-After`` (``block_provider``), else until the reset of
  what ran out. Calls admitted before the response but sent after it are not in the
  provider's count: the margin is theirs, so keep ``concurrency`` small if it matters. A call
  whose step runs again after its worker died (its admission replayed, its request perhaps
  sent already) waits for the same word before it is sent again (``provider_retry_at``).

- Order (every limited provider): calls that must wait are admitted in the order they began
  to wait, whichever worker runs them. A call that does not fit takes its place in line
  (``timestep_ledger_waits``, with its estimate), and every check of a call counts the calls
  waiting ahead of it as if they were admitted already: a call gets in only if the room
  covers it and everyone ahead, so room that frees goes to the first in line, a large call
  is never overtaken for good by smaller ones that keep fitting, and the calls a freed room
  covers all get in at their next look, not one after another. A place whose call has not
  looked for ``WAIT_ABANDONED_SECONDS`` past its time (its run cancelled, its worker gone and
  not yet recovered) is given up, so a vanished call holds the line up for at most that long.

Times are epoch seconds of the processes' clocks: keep them synchronized.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timestep.errors import BudgetExceededError, ConfigurationError

from .limits import DEFAULT_OUTPUT_TOKENS
from .provider_feedback import RateLimitFeedback
from .tables import (
    budgets_table,
    ledger_locks_table,
    ledger_waits_table,
    model_calls_table,
    provider_feedback_table,
    upsert,
    utcnow,
)

__all__ = [
    "BUDGET_COLUMNS",
    "BUDGET_PERIODS",
    "BUDGET_RECHECK_SECONDS",
    "BYTES_PER_TOKEN",
    "CallFacts",
    "IN_FLIGHT_HOLD_SECONDS",
    "WAIT_ABANDONED_SECONDS",
    "admit",
    "block_provider",
    "budget_row",
    "budget_rows",
    "budget_scope",
    "delete_budget_row",
    "estimate_call_tokens",
    "feedback_key",
    "next_period_start",
    "period_start",
    "provider_retry_at",
    "record_feedback",
    "scope_spend",
    "settle",
    "upsert_budget",
]

BYTES_PER_TOKEN = 3
"""The estimator's bytes per input token. OpenAI's encodings average about 4 bytes of English
per token, so dividing by 3 over-estimates ordinary text; byte-dense input (code, non-Latin
scripts) can exceed the estimate."""
PER_ITEM_TOKENS = 4
"""Tokens added per input item and per tool (the message framing the provider counts)."""
IN_FLIGHT_HOLD_SECONDS = 900.0
"""A row whose call never settled (its worker died for good) frees itself after this long."""
BUDGET_PERIODS = ("run", "day", "month")
BUDGET_RECHECK_SECONDS = 5.0
"""A call waiting for a budget (``on_exceed="wait"``) looks again this often (a raised budget),
and at the start of the next period at the latest."""
WAIT_ABANDONED_SECONDS = 10.0
"""A waiting call's place in line is given up this long after it should have looked again."""
_SCOPE_KINDS = ("run", "session", "agent", "tag")
# While calls are in flight, a waiting call looks again at least this often: their
# settlement can free tokens (a real usage below the estimate).
_IN_FLIGHT_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class CallFacts:
    """What ``admit`` needs to know about a model call (plain data: a step's argument)."""

    call_id: str
    workflow_id: str
    agent_name: str | None
    session_id: str | None
    tags: tuple[str, ...]
    model: str | None
    estimate_tokens: int
    estimate_cost_usd: float | None
    limit_key: str | None = None
    limit_tokens: int | None = None
    per_seconds: float | None = None
    check_budgets: bool = False


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return str(value)


def estimate_call_tokens(
    system_instructions: str | None,
    input: str | Sequence[Any],
    model_settings: Any,
    tools: Sequence[Any] = (),
    output_schema: Any = None,
    handoffs: Sequence[Any] = (),
    *,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> tuple[int, int]:
    """The documented estimate of a model call's (input, output) tokens, from the request
    alone (no tokenizer).

    Input: the UTF-8 bytes of the instructions, the input items as JSON, each tool's and
    handoff's name, description and parameter schema, and the output schema, divided by
    ``BYTES_PER_TOKEN`` (rounded up), plus ``PER_ITEM_TOKENS`` per item, tool and handoff.
    Output: the model settings' ``max_tokens``, else ``default_output_tokens``. Context the
    provider holds (``previous_response_id``, a conversation) is not in the request and not
    counted.
    """
    size = len((system_instructions or "").encode())
    items = 1 if isinstance(input, str) else len(input)
    size += len(json.dumps(input, default=_plain, ensure_ascii=False).encode())
    for tool in [*tools, *handoffs]:
        name = getattr(tool, "name", None) or getattr(tool, "tool_name", None) or ""
        description = getattr(tool, "description", None) or getattr(tool, "tool_description", "")
        schema = getattr(tool, "params_json_schema", None) or getattr(tool, "input_json_schema", {})
        size += len(f"{name}{description or ''}".encode())
        size += len(json.dumps(schema, default=_plain).encode())
        items += 1
    if output_schema is not None:
        with contextlib.suppress(Exception):  # a plain-text output type has no schema
            size += len(json.dumps(output_schema.json_schema(), default=_plain).encode())
    max_tokens = getattr(model_settings, "max_tokens", None)
    output = int(max_tokens) if max_tokens else default_output_tokens
    return math.ceil(size / BYTES_PER_TOKEN) + PER_ITEM_TOKENS * items, output


def budget_scope(scope: str) -> tuple[str, str]:
    """``("tag", "tenant-a")`` for ``"tag:tenant-a"``; ``ConfigurationError`` if malformed."""
    kind, separator, value = scope.partition(":")
    if not separator or kind not in _SCOPE_KINDS or not value:
        raise ConfigurationError(
            f"invalid budget scope {scope!r}: use run:<id>, session:<id>, agent:<name> or tag:<tag>"
        )
    if kind == "tag" and "," in value:
        raise ConfigurationError(f"invalid budget scope {scope!r}: a tag has no comma")
    return kind, value


def tags_column_value(tags: Sequence[str]) -> str:
    return f",{','.join(tags)}," if tags else ""


def period_start(per: str, now: float) -> float | None:
    """Epoch seconds when the current ``day`` / ``month`` began (UTC); ``None`` for ``run``."""
    moment = datetime.fromtimestamp(now, UTC)
    if per == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    if per == "month":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    return None


def next_period_start(per: str, now: float) -> float | None:
    """Epoch seconds when the next UTC ``day`` / ``month`` begins; ``None`` for ``run``."""
    moment = datetime.fromtimestamp(now, UTC)
    if per == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.timestamp() + 86_400
    if per == "month":
        year, month = (
            (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        )
        return datetime(year, month, 1, tzinfo=UTC).timestamp()
    return None


def _scope_filter(kind: str, value: str) -> Any:
    t = model_calls_table
    if kind == "run":
        return t.c.workflow_id == value
    if kind == "session":
        return t.c.session_id == value
    if kind == "agent":
        return t.c.agent_name == value
    return t.c.tags.contains(f",{value},", autoescape=True)


def _candidate_scopes(facts: CallFacts) -> list[str]:
    scopes = [f"run:{facts.workflow_id}"]
    if facts.session_id:
        scopes.append(f"session:{facts.session_id}")
    if facts.agent_name:
        scopes.append(f"agent:{facts.agent_name}")
    scopes += [f"tag:{tag}" for tag in facts.tags]
    return scopes


async def _lock(conn: AsyncConnection, key: str) -> float:
    """Update ``key``'s lock row (creating it): held until the transaction ends. Returns its
    ``blocked_until``."""
    t = ledger_locks_table
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(t).values(key=key, version=1, blocked_until=0.0)
    statement = statement.on_conflict_do_update(
        index_elements=["key"], set_={"version": t.c.version + 1}
    ).returning(t.c.blocked_until)
    return float((await conn.execute(statement)).scalar_one())


async def scope_spend(
    conn: AsyncConnection, scope: str, per: str, now: float, workflow_id: str | None = None
) -> tuple[int, float]:
    """Tokens and USD the calls of ``scope`` spent in the current period (``per="run"``: in
    ``workflow_id``'s run, or in all runs without one). Calls in flight count their estimate."""
    t = model_calls_table
    kind, value = budget_scope(scope)
    query = sa.select(
        sa.func.coalesce(sa.func.sum(t.c.tokens), 0), sa.func.coalesce(sa.func.sum(t.c.cost_usd), 0)
    ).where(_scope_filter(kind, value))
    start = period_start(per, now)
    if start is not None:
        query = query.where(t.c.reserved_at >= start)
    elif workflow_id is not None:
        query = query.where(t.c.workflow_id == workflow_id)
    tokens, cost = (await conn.execute(query)).one()
    return int(tokens), float(cost)


async def admit(engine: AsyncEngine, facts: CallFacts, now: float | None = None) -> float | None:
    """Admit the call (write its row, holding its estimate): ``None``. Or the epoch second to
    try again at, when its token limit or its provider's back-off has no room for it yet.
    ``BudgetExceededError`` when a budget would be passed. Idempotent by ``call_id``."""
    t = model_calls_table
    async with engine.begin() as conn:
        now = time.time() if now is None else now
        budgets: list[Any] = []
        if facts.check_budgets:
            b = budgets_table
            budgets = list(
                (
                    await conn.execute(
                        sa.select(b)
                        .where(b.c.scope.in_(_candidate_scopes(facts)))
                        .order_by(b.c.scope)
                    )
                ).all()
            )
        keys = sorted(
            ([f"provider:{facts.limit_key}"] if facts.limit_key else [])
            + [f"budget:{row.scope}" for row in budgets]
        )
        blocked_until = 0.0
        for key in keys:
            until = await _lock(conn, key)
            if key.startswith("provider:"):
                blocked_until = until
        if await conn.scalar(sa.select(t.c.call_id).where(t.c.call_id == facts.call_id)):
            return None  # admitted before (the step's record was lost to a crash)
        tokens = facts.estimate_tokens
        if facts.limit_key and facts.limit_tokens:
            tokens = min(tokens, facts.limit_tokens)
        if facts.limit_key:
            ahead_calls, ahead_tokens = await _ahead(conn, facts, now)
            retry_at = blocked_until if blocked_until > now else None
            if retry_at is None and facts.limit_tokens:
                retry_at = await _token_room(conn, facts, tokens + ahead_tokens, now)
            if retry_at is None:
                retry_at = await _provider_room(conn, facts, now, ahead_calls, ahead_tokens)
            if retry_at is not None:
                await _keep_place(conn, facts, tokens, now, retry_at)
                return retry_at
        for row in budgets:
            spent_tokens, spent_cost = await scope_spend(
                conn, row.scope, row.per, now, facts.workflow_id
            )
            exceeded: BudgetExceededError | None = None
            cost = facts.estimate_cost_usd or 0.0
            if row.max_tokens is not None and spent_tokens + tokens > row.max_tokens:
                exceeded = BudgetExceededError(
                    row.scope, row.per, "tokens", float(spent_tokens), float(row.max_tokens), tokens
                )
            elif row.max_cost_usd is not None and spent_cost + cost > row.max_cost_usd:
                exceeded = BudgetExceededError(
                    row.scope, row.per, "cost_usd", spent_cost, row.max_cost_usd, tokens
                )
            if exceeded is None:
                continue
            if row.on_exceed != "wait":
                raise exceeded
            next_start = next_period_start(row.per, now)
            recheck = now + BUDGET_RECHECK_SECONDS
            return min(recheck, next_start) if next_start is not None else recheck
        await conn.execute(
            sa.insert(t).values(
                call_id=facts.call_id,
                limit_key=facts.limit_key,
                workflow_id=facts.workflow_id,
                session_id=facts.session_id,
                agent_name=facts.agent_name,
                tags=tags_column_value(facts.tags),
                model=facts.model,
                estimate_tokens=facts.estimate_tokens,
                tokens=tokens,
                cost_usd=facts.estimate_cost_usd,
                settled=False,
                reserved_at=now,
                expires_at=now + IN_FLIGHT_HOLD_SECONDS,
            )
        )
        if facts.limit_key:
            w = ledger_waits_table
            await conn.execute(sa.delete(w).where(w.c.call_id == facts.call_id))
    return None


async def _ahead(conn: AsyncConnection, facts: CallFacts, now: float) -> tuple[int, int]:
    """The calls waiting ahead of this one for its provider, and their estimates' tokens
    (all that wait, for a call not yet in line). Gives up the places of calls that stopped
    looking."""
    w = ledger_waits_table
    line = w.c.limit_key == facts.limit_key
    await conn.execute(sa.delete(w).where(line, w.c.look_at < now - WAIT_ABANDONED_SECONDS))
    mine = (
        await conn.execute(sa.select(w.c.since).where(w.c.call_id == facts.call_id))
    ).scalar_one_or_none()
    ahead = line
    if mine is not None:
        ahead = sa.and_(
            line,
            sa.or_(w.c.since < mine, sa.and_(w.c.since == mine, w.c.call_id < facts.call_id)),
        )
    calls, tokens = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(w.c.tokens), 0)).where(ahead)
        )
    ).one()
    return int(calls), int(tokens)


async def _keep_place(
    conn: AsyncConnection, facts: CallFacts, tokens: int, now: float, look_at: float
) -> None:
    """Take the call's place in line (at ``now``, the first time it waits) or keep it, and
    say when it looks again."""
    place = {
        "call_id": facts.call_id,
        "limit_key": facts.limit_key,
        "tokens": tokens,
        "since": now,
        "look_at": look_at,
    }
    await upsert(conn, ledger_waits_table, [place], ["call_id"], ["look_at"])


async def _token_room(
    conn: AsyncConnection, facts: CallFacts, tokens: int, now: float
) -> float | None:
    """``None`` if ``tokens`` (the call's and those of the calls ahead of it in line) fit in
    the limit now, else when to look again: the expiry that frees enough, or sooner while
    calls in flight may settle below their estimate."""
    t = model_calls_table
    rows = (
        await conn.execute(
            sa.select(t.c.tokens, t.c.expires_at, t.c.settled)
            .where(t.c.limit_key == facts.limit_key, t.c.expires_at > now)
            .order_by(t.c.expires_at)
        )
    ).all()
    held = sum(row.tokens for row in rows)
    assert facts.limit_tokens is not None
    excess = held + tokens - facts.limit_tokens
    if excess <= 0:
        return None
    recheck = min(_IN_FLIGHT_RECHECK_SECONDS, (facts.per_seconds or 1.0) / 10)
    # Not enough even once every row expired: the calls ahead in line get in first, so look
    # again after the last expiry (or soon, when nothing is held and they are about to).
    retry_at = max([now + recheck, *(row.expires_at for row in rows[-1:])])
    freed = 0
    for row in rows:
        freed += row.tokens
        if freed >= excess:
            retry_at = row.expires_at
            break
    if any(not row.settled for row in rows):
        retry_at = min(retry_at, now + recheck)
    return float(retry_at)


def feedback_key(prefix: str, model: str | None) -> str:
    """The ``timestep_provider_feedback`` row of a provider's model: OpenAI's limits, and the
    headers that tell them, are per model."""
    return f"{prefix} {model or ''}"


async def _provider_room(
    conn: AsyncConnection, facts: CallFacts, now: float, ahead_calls: int, ahead_tokens: int
) -> float | None:
    """``None`` if the newest word of the call's provider on its model's limits leaves room
    for this call of its estimate after the calls ahead of it in line, else the reset to wait
    for (the module docstring)."""
    assert facts.limit_key is not None
    f = provider_feedback_table
    key = feedback_key(facts.limit_key, facts.model)
    said = (await conn.execute(sa.select(f).where(f.c.key == key))).one_or_none()
    if said is None:
        return None
    checks = [
        (said.remaining_requests, said.requests_reset_at, "requests"),
        (said.remaining_tokens, said.tokens_reset_at, "tokens"),
    ]
    live = [(left, reset, kind) for left, reset, kind in checks if left is not None and reset]
    live = [(left, reset, kind) for left, reset, kind in live if reset > now]
    if not live:
        return None
    t = model_calls_table
    calls, tokens = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.tokens), 0)).where(
                t.c.limit_key == facts.limit_key,
                t.c.model == facts.model,
                t.c.reserved_at > said.observed_at,
            )
        )
    ).one()
    since = {
        "requests": (int(calls), ahead_calls, 1),
        "tokens": (int(tokens), ahead_tokens, facts.estimate_tokens),
    }
    waits = [reset for left, reset, kind in live if sum(since[kind]) > left]
    return float(max(waits)) if waits else None


async def provider_retry_at(
    engine: AsyncEngine, facts: CallFacts, now: float | None = None
) -> float | None:
    """For a call admitted before that is about to be sent again (its step runs again after
    its worker died): ``None`` if its provider's back-off and newest word on its model's
    limits leave room for one more request of its estimate now, else when to look again.
    Read-only: the call keeps its row (which, reserved after the word, counts in it too)."""
    assert facts.limit_key is not None
    locks = ledger_locks_table
    async with engine.connect() as conn:
        now = time.time() if now is None else now
        blocked = await conn.scalar(
            sa.select(locks.c.blocked_until).where(locks.c.key == f"provider:{facts.limit_key}")
        )
        if blocked is not None and blocked > now:
            return float(blocked)
        return await _provider_room(conn, facts, now, 0, 0)


async def record_feedback(
    engine: AsyncEngine, prefix: str, model: str | None, feedback: RateLimitFeedback
) -> None:
    """Store what a response of provider ``prefix`` for ``model`` said of its limits, for
    every worker: the newest response's counts for the model replace older ones; a 429
    blocks all the provider's admissions until its ``blocked_until`` (``block_provider``)."""
    if feedback.blocked_until is not None:
        await block_provider(engine, prefix, feedback.blocked_until)
    if feedback.remaining_requests is None and feedback.remaining_tokens is None:
        return
    f = provider_feedback_table
    values = {
        "key": feedback_key(prefix, model),
        "observed_at": feedback.observed_at,
        "remaining_requests": feedback.remaining_requests,
        "requests_reset_at": feedback.requests_reset_at,
        "remaining_tokens": feedback.remaining_tokens,
        "tokens_reset_at": feedback.tokens_reset_at,
    }
    async with engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(f).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={name: statement.excluded[name] for name in values if name != "key"},
            where=f.c.observed_at < statement.excluded.observed_at,  # responses cross
        )
        await conn.execute(statement)


async def settle(
    engine: AsyncEngine,
    call_id: str,
    *,
    tokens: int | None,
    cost_usd: float | None,
    ended_at: float,
    per_seconds: float | None,
) -> None:
    """The call ended: hold its real ``tokens`` (``None``: unknown, keep the estimate) until
    ``per_seconds`` after ``ended_at``. Idempotent."""
    t = model_calls_table
    values: dict[str, Any] = {"settled": True, "expires_at": ended_at + (per_seconds or 0.0)}
    if tokens is not None:
        values["tokens"] = tokens
        values["cost_usd"] = cost_usd
    async with engine.begin() as conn:
        await conn.execute(sa.update(t).where(t.c.call_id == call_id).values(**values))


async def block_provider(engine: AsyncEngine, prefix: str, until: float) -> None:
    """No call of the limited provider ``prefix`` is admitted before ``until`` (a 429's
    Retry-After), from any worker; a later block wins."""
    t = ledger_locks_table
    async with engine.begin() as conn:
        await _lock(conn, f"provider:{prefix}")
        await conn.execute(
            sa.update(t)
            .where(t.c.key == f"provider:{prefix}", t.c.blocked_until < until)
            .values(blocked_until=until)
        )


BUDGET_COLUMNS = ("max_cost_usd", "max_tokens", "per", "on_exceed", "updated_at")


def budget_row(
    scope: str,
    *,
    max_cost_usd: float | None,
    max_tokens: int | None,
    per: str,
    on_exceed: str = "stop",
) -> dict[str, Any]:
    """A validated ``timestep_budgets`` row (``ConfigurationError`` says what is wrong)."""
    budget_scope(scope)
    if per not in BUDGET_PERIODS:
        raise ConfigurationError(f"budget {scope!r}: per must be run, day or month, not {per!r}")
    if on_exceed not in ("stop", "wait"):
        raise ConfigurationError(f"budget {scope!r}: on_exceed must be stop or wait")
    if max_cost_usd is None and max_tokens is None:
        raise ConfigurationError(f"budget {scope!r}: give max_cost_usd, max_tokens or both")
    for label, value in (("max_cost_usd", max_cost_usd), ("max_tokens", max_tokens)):
        if value is not None and value < 0:
            raise ConfigurationError(f"budget {scope!r}: {label} must be >= 0, got {value}")
    return {
        "scope": scope,
        "max_cost_usd": max_cost_usd,
        "max_tokens": max_tokens,
        "per": per,
        "on_exceed": on_exceed,
        "updated_at": utcnow(),
    }


async def upsert_budget(
    engine: AsyncEngine,
    scope: str,
    *,
    max_cost_usd: float | None,
    max_tokens: int | None,
    per: str,
    on_exceed: str = "stop",
) -> None:
    row = budget_row(
        scope, max_cost_usd=max_cost_usd, max_tokens=max_tokens, per=per, on_exceed=on_exceed
    )
    async with engine.begin() as conn:
        await upsert(conn, budgets_table, [row], ["scope"], list(BUDGET_COLUMNS))


async def delete_budget_row(engine: AsyncEngine, scope: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(sa.delete(budgets_table).where(budgets_table.c.scope == scope))
    return bool(result.rowcount)


async def budget_rows(conn: AsyncConnection) -> list[Any]:
    return list(
        (await conn.execute(sa.select(budgets_table).order_by(budgets_table.c.scope))).all()
    )
