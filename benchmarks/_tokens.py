"""(11) The token limiter at saturation, and the cost of the ledger check per model call.

Saturation: ``CONCURRENCY`` loops start one-call runs back to back, first for a few seconds
without a limit (the demand: calls per second this machine sustains), then for ``duration``
seconds on a provider limited to ``tokens`` per ``window`` seconds (``limit_provider(...,
tokens=)``), set at half the demand (at most 10 calls per second), so the limiter and not the
machine is what holds the calls back.
The zero-latency model answers every call with 15 tokens (10 in, 5 out), its estimate is a
few dozen (the request's bytes / 3, plus ``max_tokens=5``). From the calls' times, every
window of ``window`` seconds that starts at a call and ends before the last one holds some
tokens: "max window" must be at most the limit (never exceeded), and the achieved fraction is
the mean over those windows after the first (the first holds the opening burst) divided by
the limit.

Check cost: one-call runs, interleaved, through a provider without a limit, with a request
limit that never waits (``requests=10**9``), with a token limit that never waits
(``tokens=10**12``), and with budgets enforced (a tag's budget that is never reached); the
per-run milliseconds, and their difference from the unlimited run: what the check adds to a
model call.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from rich.progress import Progress

import timestep
from timestep._core.process import process_state

from . import _common
from ._agents import TOKEN_AGENTS
from ._common import measure_interleaved, new_id

CONCURRENCY = 20
TOKENS_PER_CALL = 15  # ZeroLatencyModel's usage


def _windows(times: list[float], window: float, limit: int) -> dict[str, Any]:
    times = sorted(times)
    starts = [t for t in times if t + window <= times[-1]]
    sums = [sum(t <= u < t + window for u in times) * TOKENS_PER_CALL for t in starts]
    steady = [s for t, s in zip(starts, sums, strict=True) if t >= times[0] + window]
    return {
        "limit_tokens": limit,
        "window_s": window,
        "calls": len(times),
        "span_s": times[-1] - times[0],
        "max_window_tokens": max(sums) if sums else None,
        "exceeded": bool(sums) and max(sums) > limit,
        "achieved_fraction": statistics.fmean(steady) / limit if steady else None,
        "min_fraction": min(steady) / limit if steady else None,
        "steady_windows": len(steady),
    }


async def _calls_per_second(seconds: float) -> float:
    """What ``CONCURRENCY`` loops of one-call runs sustain here without a limit."""
    agent = TOKEN_AGENTS["benchplain"]
    deadline = time.monotonic() + seconds
    calls = 0

    async def loop() -> None:
        nonlocal calls
        while time.monotonic() < deadline:
            await timestep.run_agent_workflow(agent, "go", workflow_id=new_id("bd"))
            calls += 1

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
    return calls / (time.monotonic() - started)


async def _saturation(
    window: float, duration: float, progress: Progress, label: str
) -> dict[str, Any]:
    demand = await _calls_per_second(10.0)
    rate = min(10.0, demand / 2)
    tokens = max(10 * TOKENS_PER_CALL, int(rate * window) * TOKENS_PER_CALL)
    timestep.limit_provider("benchtok", tokens=tokens, per_seconds=window)
    agent = TOKEN_AGENTS["benchtok"]
    _common.MODEL_CALL_TIMES = []
    task = progress.add_task(f"{label} {tokens}/{window:g}s", total=int(duration))
    deadline = time.monotonic() + duration

    async def loop() -> None:
        while time.monotonic() < deadline:
            result = await timestep.run_agent_workflow(agent, "go", workflow_id=new_id("bt"))
            assert result.final_output == "done"

    async def tick() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            progress.advance(task)

    try:
        await asyncio.gather(tick(), *(loop() for _ in range(CONCURRENCY)))
        return {
            **_windows(_common.MODEL_CALL_TIMES, window, tokens),
            "demand_calls_per_s": demand,
        }
    finally:
        _common.MODEL_CALL_TIMES = None


async def _check_cost(runs: int, progress: Progress, label: str) -> dict[str, Any]:
    timestep.limit_provider("benchreq", requests=10**9, per_seconds=60.0)
    timestep.limit_provider("benchcap", tokens=10**12, per_seconds=60.0)
    tag = new_id("bench-tenant")
    await timestep.set_budget(f"tag:{tag}", max_tokens=10**12, per="day")
    process = process_state()
    process.budgets_enforced = False  # only the budget contender checks them
    process.budgets_looked_at = float("inf")  # and runs do not look for the budget set above

    def one(prefix: str, budgets: bool = False) -> Any:
        agent = TOKEN_AGENTS[prefix]

        async def run() -> None:
            process.budgets_enforced = budgets
            try:
                await timestep.run_agent_workflow(
                    agent, "go", workflow_id=new_id("bc"), tags=[tag] if budgets else None
                )
            finally:
                process.budgets_enforced = False

        return run

    figures = await measure_interleaved(
        {
            "no limit": one("benchplain"),
            "request limit": one("benchreq"),
            "token limit": one("benchcap"),
            "budget": one("benchbudget", budgets=True),
        },
        runs,
        progress,
        label,
    )
    base = figures["no limit"]["p50_ms"]
    for value in figures.values():
        value["check_ms_p50"] = value["p50_ms"] - base
    await timestep.remove_budget(f"tag:{tag}")
    return figures


async def run(kind: str, quick: bool, progress: Progress) -> dict[str, Any]:
    # 60 s windows as providers count; --quick: 10 s windows, for a smoke test.
    window, duration, runs = (10.0, 35.0, 40) if quick else (60.0, 150.0, 200)
    out: dict[str, Any] = {}
    out["check cost"] = await _check_cost(runs, progress, f"{kind}: (11) ledger check cost")
    out["saturation"] = await _saturation(window, duration, progress, f"{kind}: (11) token limit")
    return out
