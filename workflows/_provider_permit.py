"""Provider permits: the workflows that hold a limited provider's rate and concurrency slots.

A limited provider's durable model calls take *permits*: small workflows enqueued on the
provider's DBOS queues (``timestep._core.limits``), which DBOS starts within each queue's
global concurrency, across every process that shares the database. A call waits for its
permits, runs, and releases them.

- ``concurrency``: queue ``timestep.provider.<prefix>``; its permit lives while the call runs.
- ``requests`` per ``per_seconds``: queue ``timestep.provider.<prefix>.rate``, global
  concurrency ``requests``; its permit lives until ``per_seconds`` after the call *ended*.
  A request is sent before its call ends, so all the requests of any ``per_seconds`` window
  still hold their permits at the window's last request: no window sees more than
  ``requests`` calls at the provider, whatever the delay between a grant and its request (a
  cold process, a busy event loop) and on either database. DBOS's own queue limiter counts
  dequeues instead, which the requests trail by such delays. The price: a slot stays busy
  for the call plus ``per_seconds``, so long calls achieve less than the configured rate.

  A slot changes hands ahead of time: a rate permit ends up to ``_EARLY_GRANT_SECONDS``
  before its slot is free, after writing when it ends and when its slot will be free
  (``handed_at``, ``free_at``, epoch seconds) to ``timestep_rate_slots``; the next permit,
  started by DBOS in the slot, grants ``not_before``, the latest ``free_at`` of the slots
  handed on and still cooling down, and its call waits for that moment. So the queue's poll,
  the grant's delivery and a busy event loop overlap the cool-down instead of adding to it.
  That read is an index range over the rows still cooling down (about ``requests`` of them),
  however many calls the queue has had. The processes of one database compare these times by
  their clocks: keep them synchronized.

A provider with a token limit, and every call while budgets are enforced, also goes through
the ledger of model calls (``timestep._core.ledger``, which says why it is exact): the call's
admission (``timestep.ledger.admit``, a step; a call with no room yet sleeps durably until
the ledger says room frees up, and tries again) comes after its permits, right before the
call, and its settlement to the real usage (``timestep.ledger.settle``) after the call.

Provider feedback: every limited provider's calls (``limit_provider(prefix)``, even with no
numbers) are admitted by the ledger, which obeys what the provider itself says of its limits,
for every worker sharing the database. While a call runs, ``feedback_sink`` is set to record
each response's ``x-ratelimit-remaining-requests`` / ``-tokens`` with their
``x-ratelimit-reset-requests`` / ``-tokens`` (``"6m0s"``, ``"1s"``, ``"20ms"``), and a 429's
``Retry-After`` / ``retry-after-ms`` (else the reset of what ran out). The OpenAI client's
response hook (``providers.watch_rate_limits``, installed on the model's client) hands them
over as they arrive, including the 429s the client retries by itself; a 429 that reaches the
step is recorded from the error too (a client without the hook). Then no call of the provider,
from any worker, is admitted while the provider said nothing is left: not before a 429's
Retry-After, and not past the remaining requests or tokens until their reset
(``timestep._core.ledger`` says how they are counted). That holds after a crash too: a call
waiting for the provider's word sleeps durably, so a recovered run waits out only what is left,
and a call whose step runs again (its worker died during the call, its admission replayed)
waits for the provider's word before it is sent again.

A permit's enqueue, grant and release are recorded in the run's workflow like any step: a
replay after a crash takes no second permit for a call that already finished, and the permit
of a run that died frees itself (after ``_PERMIT_HOLD_SECONDS`` plus its cool-down).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import sqlalchemy as sa
from dbos import DBOS, StepOptions

from timestep._core import ledger
from timestep._core.limits import DEFAULT_OUTPUT_TOKENS, ProviderLimit
from timestep._core.process import process_state
from timestep._core.protocol import PERMIT_WORKFLOW
from timestep._core.provider_feedback import (
    RateLimitFeedback,
    feedback_sink,
    read_rate_limit_headers,
)
from timestep._core.runtime import tables_engine
from timestep._core.sdk_forms import model_call_usage
from timestep._core.tables import insert_ignoring_duplicates, rate_slots_table
from timestep.steps import MODEL_STEP_PREFIX, CurrentRun, current_run

__all__ = ["provider_permit", "run_with_permit"]

_GRANTED = "timestep.permit.granted"
_RELEASE = "timestep.permit.release"
# A permit whose run died without releasing it frees itself after this long.
_PERMIT_HOLD_SECONDS = 900.0
# How long before its slot is free a rate permit hands it on (at most half the cool-down):
# longer than a queue poll plus a grant's delivery under load, which it hides.
_EARLY_GRANT_SECONDS = 2.0
# A handed-on slot's row is deleted this long after the slot was free (clock skew's margin).
_RATE_SLOT_ROW_SECONDS = 60.0
# A call sent again after a crash looks at the provider's word again at most this often.
_RECHECK_SECONDS = 0.01

# Tells a permit running in the caller's own process that the release's clock is its clock.
_PROCESS = uuid.uuid4().hex


@DBOS.workflow(name=PERMIT_WORKFLOW)
async def provider_permit(
    hold_seconds: float, cooldown_seconds: float, queue_name: str | None = None
) -> float | None:
    """Holds a slot of its queue from its grant until ``cooldown_seconds`` after the call ended.

    A rate permit (``cooldown_seconds > 0``) ends early and returns its slot's ``free_at``."""
    not_before = await _slot_free_at(queue_name) if cooldown_seconds > 0 and queue_name else None
    await DBOS.set_event_async(_GRANTED, not_before if not_before is not None else True)
    release = await DBOS.recv_async(_RELEASE, timeout_seconds=hold_seconds)
    if cooldown_seconds <= 0:
        return None
    if isinstance(release, dict) and release.get("process") == _PROCESS:
        # Same process: count from when the call ended, not from when this permit heard of
        # it, which a busy event loop can delay by a good part of a second.
        cooldown_seconds -= max(0.0, time.monotonic() - release["ended"])
    free_at = time.time() + max(0.0, cooldown_seconds)
    early = min(_EARLY_GRANT_SECONDS, cooldown_seconds / 2) if queue_name else 0.0
    if queue_name and early > 0:
        await _hand_on(queue_name, handed_at=free_at - early, free_at=free_at)
    await DBOS.sleep_async(max(0.0, free_at - early - time.time()))
    return free_at


async def _hand_on(queue_name: str, *, handed_at: float, free_at: float) -> None:
    """Publish that this permit's slot changes hands at ``handed_at`` and is free at
    ``free_at``, before the permit ends; and delete the queue's rows long past.

    Keyed by the permit: a replay after a crash keeps the first row, whose ``free_at`` the
    permit's durable sleep was computed from."""
    permit_id = DBOS.workflow_id
    assert permit_id is not None
    t = rate_slots_table
    async with (await tables_engine()).begin() as conn:
        await insert_ignoring_duplicates(
            conn,
            t,
            [
                {
                    "permit_id": permit_id,
                    "queue_name": queue_name,
                    "handed_at": handed_at,
                    "free_at": free_at,
                }
            ],
        )
        await conn.execute(
            sa.delete(t).where(
                t.c.queue_name == queue_name, t.c.free_at < handed_at - _RATE_SLOT_ROW_SECONDS
            )
        )


async def _slot_free_at(queue_name: str) -> float | None:
    """The latest ``free_at`` of the slots of ``queue_name`` handed on and still cooling down:
    one of them is the slot DBOS started this permit in."""
    t = rate_slots_table
    now = time.time()
    async with (await tables_engine()).connect() as conn:
        latest: float | None = await conn.scalar(
            sa.select(sa.func.max(t.c.free_at)).where(
                t.c.queue_name == queue_name, t.c.free_at > now, t.c.handed_at <= now
            )
        )
    return latest


async def run_with_permit(
    limit: ProviderLimit | None,
    options: StepOptions,
    call: Callable[..., Awaitable[Any]],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Take the call's place in the ledger and the provider's permits, run ``call`` as a DBOS
    step, give the permits back and settle the ledger.

    The rate permit comes first, so a call waiting for its turn holds no concurrency slot.
    Its cool-down counts from when ``call`` returned: its requests went out before that, and
    the step's checkpoint write after it need not be waited out too."""
    permits: list[str] = []
    ended: float | None = None  # None: the step replayed from its checkpoint, calling nothing
    ended_at: float | None = None
    waited_from = time.time_ns()
    run = current_run()

    async def timed(*call_args: Any, **call_kwargs: Any) -> Any:
        nonlocal ended, ended_at
        if admitted is not None and not admitted_now and admitted.limit_key:
            await _obey_provider(admitted)  # the step runs again: it may have been sent before
        if run is not None and run.trace is not None and limit is not None:
            run.trace.defer(  # the call's wait for its turn, emitted with its own span
                "timestep.queue_wait",
                waited_from,
                time.time_ns(),
                {"gen_ai.provider.name": limit.prefix, "timestep.workflow_id": run.workflow_id},
            )
        record = _recorder(limit.prefix, _model_of(options)) if limit is not None else None
        token = feedback_sink.set(record)
        try:
            return await call(*call_args, **call_kwargs)
        except openai.APIStatusError as exc:
            if exc.status_code == 429 and record is not None:
                await _back_off(record, exc)
            raise
        finally:
            feedback_sink.reset(token)
            ended, ended_at = time.monotonic(), time.time()

    admitted: ledger.CallFacts | None = None
    admitted_now = False  # False: the admission replayed (the call's step may run again)
    try:
        if limit is not None and limit.limits_rate:
            permits.append(await _acquire(limit.rate_queue_name, limit.per_seconds or 0.0))
        if limit is not None and limit.limits_concurrency:
            permits.append(await _acquire(limit.queue_name, 0.0))
        if run is not None and (limit is not None or run.check_budgets):
            # Last: the call's row holds its estimate only while the call itself runs.
            admitted, admitted_now = await _admit(limit, run, options, args, kwargs)
        result = await DBOS.run_step_async(options, timed, *args, **kwargs)
    except Exception:
        if admitted is not None:  # usage unknown: the call holds its estimate
            await _settle(admitted, None, ended_at)
        raise
    finally:
        release = {"process": _PROCESS, "ended": ended if ended is not None else time.monotonic()}
        for permit_id in reversed(permits):
            await DBOS.send_async(permit_id, release, _RELEASE)
    if admitted is not None:
        await _settle(admitted, result, ended_at)
    return result


async def _admit(
    limit: ProviderLimit | None,
    run: CurrentRun,
    options: StepOptions,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[ledger.CallFacts, bool]:
    """Admit the call in the ledger, waiting (durably) while its token limit has no room;
    ``BudgetExceededError`` (recorded as the step's error) if a budget would be passed.
    Returns the call's facts and whether the admission was made now (not replayed)."""
    model = _model_of(options)
    input_tokens, output_tokens = ledger.estimate_call_tokens(
        *_request_parts(args, kwargs),
        default_output_tokens=limit.output_tokens if limit is not None else DEFAULT_OUTPUT_TOKENS,
    )
    prices = process_state().prices
    facts = ledger.CallFacts(
        call_id="",
        workflow_id=run.workflow_id,
        agent_name=run.agent_name,
        session_id=run.session_id,
        tags=run.tags,
        model=model,
        estimate_tokens=input_tokens + output_tokens,
        estimate_cost_usd=prices.cost_of(model, input_tokens, output_tokens) if model else None,
        limit_key=limit.prefix if limit is not None else None,
        limit_tokens=limit.tokens if limit is not None else None,
        per_seconds=limit.per_seconds if limit is not None else None,
        check_budgets=run.check_budgets,
    )

    executed = False

    async def attempt(call_id: str) -> dict[str, Any]:
        nonlocal executed
        executed = True
        call_id = call_id or f"{DBOS.workflow_id}:{DBOS.step_id}"
        engine = await tables_engine()
        retry_at = await ledger.admit(engine, dataclasses.replace(facts, call_id=call_id))
        wait = max(0.0, retry_at - time.time()) if retry_at is not None else None
        return {"call_id": call_id, "retry_at": retry_at, "wait": wait}

    call_id = ""
    while True:
        executed = False
        outcome = await DBOS.run_step_async({"name": "timestep.ledger.admit"}, attempt, call_id)
        call_id = outcome["call_id"]
        if outcome["retry_at"] is None:
            return dataclasses.replace(facts, call_id=call_id), executed
        # How long, from the checkpoint: DBOS records no step for a sleep of 0, so a wait
        # computed again on a replay after ``retry_at`` passed would skip the step the first
        # execution recorded, and every later step of the run would be taken for the one
        # before it (DBOSUnexpectedStepError). (A checkpoint of before "wait": as then.)
        wait = outcome.get("wait", max(0.0, outcome["retry_at"] - time.time()))
        await DBOS.sleep_async(wait)


async def _obey_provider(facts: ledger.CallFacts) -> None:
    """The call's step runs again, its admission replayed (its worker died during the call,
    or between the two): the request may have gone out before and drawn a 429 or used what
    the provider had left, so the call waits, as an admission would, until the provider's
    back-off and newest word (``ledger.provider_retry_at``) leave room for it. Not durable:
    a step that dies again looks again, and the word is in the database."""
    engine = await tables_engine()
    while (retry_at := await ledger.provider_retry_at(engine, facts)) is not None:
        await asyncio.sleep(max(_RECHECK_SECONDS, retry_at - time.time()))


def _request_parts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """``Model.get_response``'s / ``stream_response``'s first six arguments."""
    names = ("system_instructions", "input", "model_settings", "tools", "output_schema")
    parts = list(args[:6])
    for name in (*names, "handoffs")[len(parts) :]:
        parts.append(kwargs.get(name))
    system_instructions, input_items, settings, tools, output_schema, handoffs = parts
    return (
        system_instructions,
        input_items or "",
        settings,
        tools or (),
        output_schema,
        handoffs or (),
    )


async def _settle(facts: ledger.CallFacts, result: Any, ended_at: float | None) -> None:
    usage = model_call_usage(result)
    tokens = cost = None
    if usage is not None:
        input_tokens, output_tokens, cached = usage
        tokens = input_tokens + output_tokens
        if facts.model:
            cost = process_state().prices.cost_of(facts.model, input_tokens, output_tokens, cached)

    async def settle() -> None:
        await ledger.settle(
            await tables_engine(),
            facts.call_id,
            tokens=tokens,
            cost_usd=cost,
            ended_at=ended_at if ended_at is not None else time.time(),
            per_seconds=facts.per_seconds if facts.limit_key else None,
        )

    await DBOS.run_step_async({"name": "timestep.ledger.settle"}, settle)


def _model_of(options: StepOptions) -> str | None:
    """The model a model step calls (its name is ``model:<model name>``)."""
    return str(options.get("name") or "").removeprefix(MODEL_STEP_PREFIX) or None


def _recorder(prefix: str, model: str | None) -> Callable[[RateLimitFeedback], Awaitable[None]]:
    async def record(feedback: RateLimitFeedback) -> None:
        try:
            await ledger.record_feedback(await tables_engine(), prefix, model, feedback)
        except Exception:  # the call goes on: its own response matters more than the hint
            DBOS.logger.warning("could not record %s's rate-limit headers", prefix, exc_info=True)

    return record


async def _back_off(
    record: Callable[[RateLimitFeedback], Awaitable[None]], exc: openai.APIStatusError
) -> None:
    """A 429 that reached the step: no worker's call of the provider is admitted before its
    Retry-After (else the reset of what ran out) has passed."""
    feedback = read_rate_limit_headers(429, exc.response.headers, time.time())
    if feedback is not None:
        await record(feedback)


async def _acquire(queue_name: str, cooldown_seconds: float) -> str:
    handle = await DBOS.enqueue_workflow_async(
        queue_name, provider_permit, _PERMIT_HOLD_SECONDS, float(cooldown_seconds), queue_name
    )
    permit_id = handle.workflow_id
    while (granted := await DBOS.get_event_async(permit_id, _GRANTED, timeout_seconds=60)) is None:
        pass  # still queued behind other calls: keep waiting (each wait is checkpointed)
    if isinstance(granted, float) and (wait := granted - time.time()) > 0:
        # The slot was handed on before it is free. Not a durable sleep: a replay has
        # nothing left to wait for, and a recovered run waits out what is left of it.
        await asyncio.sleep(wait)
    return permit_id
