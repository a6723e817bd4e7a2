"""(6) Runs per second with 8, 32 and 128 runs in flight in one process; at 32 in flight also
the plain SDK Runner, a bare DBOS workflow of the same 5 steps and the direct wiring (2d), the
contenders taking turns level by level."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.progress import Progress

from ._common import summary
from ._overhead import bare_dbos, direct_wiring, plain_runner, timestep_run

LEVELS = (8, 32, 128)
COMPARED_AT = 32
OTHERS: dict[str, Callable[[], Awaitable[None]]] = {
    "plain_runner": plain_runner,
    "bare_dbos": bare_dbos,
    "direct_wiring": direct_wiring,
}


async def _level(
    fn: Callable[[], Awaitable[None]], in_flight: int, total: int, progress: Progress, label: str
) -> dict[str, Any]:
    remaining = total
    latencies: list[float] = []
    task = progress.add_task(label, total=total)

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await fn()
            latencies.append((time.perf_counter() - started) * 1000)
            progress.advance(task)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "runs": total,
        "seconds": elapsed,
        "runs_per_s": total / elapsed,
        "cpu_ms_per_run": cpu / total * 1000,
        **summary(latencies),
    }


async def run(kind: str, quick: bool, progress: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for level in LEVELS:
        total = max(level * (2 if quick else 4), 64 if quick else 256)
        out[str(level)] = await _level(
            timestep_run, level, total, progress, f"{kind}: (6) {level} in flight"
        )
        if level == COMPARED_AT:
            others = {}
            for name, fn in OTHERS.items():
                others[name] = await _level(
                    fn, level, total, progress, f"{kind}: (6) {level} in flight, {name}"
                )
            # Timestep again after the others: the machine's drift shows as its spread.
            others["timestep_again"] = await _level(
                timestep_run, level, total, progress, f"{kind}: (6) {level} in flight, again"
            )
            out[f"others_{level}"] = others
    return out
