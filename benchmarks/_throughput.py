"""(6) Runs per second with 8, 32 and 128 runs in flight in one process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.progress import Progress

import timestep

from ._agents import BENCH_AGENT
from ._common import new_id, summary

LEVELS = (8, 32, 128)


async def _level(in_flight: int, total: int, progress: Progress, label: str) -> dict[str, Any]:
    remaining = total
    latencies: list[float] = []
    task = progress.add_task(label, total=total)

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            result = await timestep.run_agent_workflow(
                BENCH_AGENT, "go", workflow_id=new_id("bench-tp")
            )
            assert result.final_output == "done"
            latencies.append((time.perf_counter() - started) * 1000)
            progress.advance(task)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    return {"runs": total, "seconds": elapsed, "runs_per_s": total / elapsed, **summary(latencies)}


async def run(kind: str, quick: bool, progress: Progress) -> dict[str, Any]:
    out = {}
    for level in LEVELS:
        total = max(level * (2 if quick else 4), 64 if quick else 256)
        out[str(level)] = await _level(level, total, progress, f"{kind}: (6) {level} in flight")
    return out
