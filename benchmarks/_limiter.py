"""(8) The queue limiter's achieved rate against the configured one.

Two measurements: DBOS's own queue limiter (a queue of no-op workflows: the times they start),
and ``timestep.limit_provider`` on the model calls of concurrent agent runs (the times the
model is called). With the calls' times sorted, ``t[i + limit] - t[i]`` is how long the
limiter took to admit ``limit`` more calls: a window of ``period`` holds at most ``limit``
calls exactly when every such gap is at least ``period`` ("busiest window", the most calls in
any window, shows it), and the achieved rate is ``limit`` over the median gap. The rate over
the whole run, ``(calls - limit) / (last call - first call)``, is reported too; it also counts
the time the runs take to reach their first model call (on 2 cores, most of a second for 20
runs started together), which is the demand arriving, not the limiter.

The windows are 2 s and 5 s: a provider limit's cost is a fixed delay per window (a queue
poll and the permit's hand-over, about 0.1 s), so sub-second windows measure that delay, not
the limiter; providers count per minute.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from dbos import DBOS
from rich.progress import Progress

import timestep
from timestep._core.protocol import PERMIT_WORKFLOW

from . import _common
from ._agents import LIMITED_AGENT
from ._common import new_id

# (limit, period): 5 per second, over a 2 s window and over a 5 s one.
CONFIGS = ((10, 2.0), (25, 5.0))
_starts: list[float] = []


@DBOS.workflow(name="bench.limited_noop")
async def limited_noop() -> None:
    _starts.append(time.perf_counter())


def _achieved(starts: list[float], limit: int, period: float) -> dict[str, Any]:
    starts = sorted(starts)
    span = starts[-1] - starts[0]
    configured = limit / period
    gap = statistics.median(b - a for a, b in zip(starts, starts[limit:], strict=False))
    achieved = limit / gap
    over_span = (len(starts) - limit) / span if span > 0 else float("inf")
    return {
        "limit": limit,
        "period_s": period,
        "configured_per_s": configured,
        "achieved_per_s": achieved,
        "error_pct": (achieved / configured - 1) * 100,
        "median_gap_s": gap,
        "achieved_over_span_per_s": over_span,
        "over_span_error_pct": (over_span / configured - 1) * 100,
        "starts": len(starts),
        "span_s": span,
        "busiest_window": max(sum(t <= u < t + period for u in starts) for t in starts),
    }


async def _dbos_queue(
    limit: int, period: float, total: int, progress: Progress, label: str
) -> dict[str, Any]:
    queue = f"bench.limiter.{limit}.{period}"
    await DBOS.register_queue_async(
        queue,
        limiter={"limit": limit, "period": period},
        polling_interval_sec=0.05,
        on_conflict="always_update",
    )
    _starts.clear()
    task = progress.add_task(label, total=total)
    handles = [await DBOS.enqueue_workflow_async(queue, limited_noop) for _ in range(total)]
    for handle in handles:
        await handle.get_result()
        progress.advance(task)
    return _achieved(_starts, limit, period)


async def _limit_provider(
    limit: int, period: float, runs: int, progress: Progress, label: str
) -> dict[str, Any]:
    provider_limit = timestep.limit_provider("bench", requests=limit, per_seconds=period)
    _common.MODEL_CALL_TIMES = []
    task = progress.add_task(label, total=runs)

    async def one() -> None:
        result = await timestep.run_agent_workflow(
            LIMITED_AGENT, "go", workflow_id=new_id("bench-limited")
        )
        assert result.final_output == "done"
        progress.advance(task)

    try:
        await asyncio.gather(*(one() for _ in range(runs)))
        return _achieved(_common.MODEL_CALL_TIMES, limit, period)
    finally:
        _common.MODEL_CALL_TIMES = None
        # The last permits cool down for a period after their calls: let them end here, so
        # the next configuration starts with free slots and no permit outlives the database.
        await _drained(provider_limit.rate_queue_name, timeout=period + 30)


async def _drained(queue_name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await DBOS.list_workflows_async(
        name=PERMIT_WORKFLOW, queue_name=queue_name, status=["PENDING", "ENQUEUED"]
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"permits of {queue_name} still held after {timeout} s")
        await asyncio.sleep(0.2)


async def run(kind: str, quick: bool, progress: Progress) -> dict[str, Any]:
    out = {}
    for limit, period in CONFIGS:
        total = limit * (3 if quick else 4)
        tag = f"{limit}/{period:g}s"
        out[f"dbos_queue {tag}"] = await _dbos_queue(
            limit, period, total, progress, f"{kind}: (8) DBOS queue {tag}"
        )
        if hasattr(timestep, "limit_provider"):
            # Each run makes two model calls (one tool call, then the answer).
            out[f"timestep.limit_provider {tag}"] = await _limit_provider(
                limit, period, total // 2, progress, f"{kind}: (8) limit_provider {tag}"
            )
    return out
