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

A permit's enqueue, grant and release are recorded in the run's workflow like any step: a
replay after a crash takes no second permit for a call that already finished, and the permit
of a run that died frees itself (after ``_PERMIT_HOLD_SECONDS`` plus its cool-down).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, StepOptions

from timestep._core.limits import ProviderLimit
from timestep._core.protocol import PERMIT_WORKFLOW
from timestep._core.runtime import tables_engine
from timestep._core.tables import insert_ignoring_duplicates, rate_slots_table

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
    limit: ProviderLimit,
    options: StepOptions,
    call: Callable[..., Awaitable[Any]],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Take the provider's permits, run ``call`` as a DBOS step, give them back.

    The rate permit comes first, so a call waiting for its turn holds no concurrency slot.
    Its cool-down counts from when ``call`` returned: its requests went out before that, and
    the step's checkpoint write after it need not be waited out too."""
    permits: list[str] = []
    ended: float | None = None  # None: the step replayed from its checkpoint, calling nothing

    async def timed(*call_args: Any, **call_kwargs: Any) -> Any:
        nonlocal ended
        try:
            return await call(*call_args, **call_kwargs)
        finally:
            ended = time.monotonic()

    try:
        if limit.limits_rate:
            permits.append(await _acquire(limit.rate_queue_name, limit.per_seconds or 0.0))
        if limit.limits_concurrency:
            permits.append(await _acquire(limit.queue_name, 0.0))
        return await DBOS.run_step_async(options, timed, *args, **kwargs)
    finally:
        release = {"process": _PROCESS, "ended": ended if ended is not None else time.monotonic()}
        for permit_id in reversed(permits):
            await DBOS.send_async(permit_id, release, _RELEASE)


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
