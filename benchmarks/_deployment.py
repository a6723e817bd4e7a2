"""What a long-running deployment needs, in one worker process.

(14) memory per run in flight: N runs (1,000; 200 with ``--quick``) waiting for an approval
inside their workflows; the process's RSS and its asyncio tasks beyond the baseline measured
just before, per waiting run (target: under 100 KB). The runs are then approved and finished.

(15) a realistic model: the HTTP fake answers after 300 ms and streams 20 deltas 10 ms apart;
streamed Timestep runs (one model call each) with 8, 16, 32, 64 and 128 in flight; the most
runs in flight whose p95 run time stays within 10 % of the model's own time (a plain
``Runner.run_streamed`` of the same call, alone).
"""

from __future__ import annotations

import asyncio
import gc
import resource
import time
from pathlib import Path
from typing import Any

from agents import Agent, RunConfig, Runner
from rich.progress import Progress

import timestep

from ._agents import APPROVAL_AGENT
from ._common import new_id, provider_process, summary

LATENCY_SECONDS = 0.3
DELTAS = 20
GAP_SECONDS = 0.01
LEVELS = (1, 2, 4, 8, 16, 32, 64, 128)
WITHIN = 1.10


def _rss_kb() -> float:
    """Resident set size now (not the peak), from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1024


async def _settled_rss() -> float:
    gc.collect()
    await asyncio.sleep(0.2)
    return _rss_kb()


async def waiting(kind: str, runs: int, progress: Progress) -> dict[str, Any]:
    task = progress.add_task(f"{kind}: (14) {runs} runs waiting", total=runs * 2)
    for _ in range(3):  # warm up the path (imports, caches, pools)
        await _one_approved()
    rss_before, tasks_before = await _settled_rss(), len(asyncio.all_tasks())
    handles = []
    for _ in range(runs):
        workflow_id = new_id("bench-wait")
        handles.append(
            await timestep.start_agent_run(
                APPROVAL_AGENT, "go", workflow_id=workflow_id, wait_for_approvals=True
            )
        )
    for handle in handles:  # every run published its pending approval: it is waiting
        while not await timestep.get_pending_approvals(handle.workflow_id):
            await asyncio.sleep(0.01)
        progress.advance(task)
    rss_waiting, tasks_waiting = await _settled_rss(), len(asyncio.all_tasks())
    started = time.perf_counter()
    for handle in handles:
        await timestep.approve(handle.workflow_id, "call_0")
    for handle in handles:
        assert (await handle.result()).final_output == "done"
        progress.advance(task)
    finished_s = time.perf_counter() - started
    rss_after = await _settled_rss()
    return {
        "runs": runs,
        "rss_baseline_kb": rss_before,
        "rss_waiting_kb": rss_waiting,
        "rss_after_kb": rss_after,
        "kb_per_waiting_run": (rss_waiting - rss_before) / runs,
        "tasks_baseline": tasks_before,
        "tasks_waiting": tasks_waiting,
        "tasks_per_waiting_run": (tasks_waiting - tasks_before) / runs,
        "approve_all_to_all_finished_s": finished_s,
    }


async def _one_approved() -> None:
    handle = await timestep.start_agent_run(
        APPROVAL_AGENT, "go", workflow_id=new_id("bench-wait"), wait_for_approvals=True
    )
    while not await timestep.get_pending_approvals(handle.workflow_id):
        await asyncio.sleep(0.01)
    await timestep.approve(handle.workflow_id, "call_0")
    await handle.result()


async def _plain(agent: Agent[Any], config: RunConfig) -> float:
    started = time.perf_counter()
    result = Runner.run_streamed(agent, "go", run_config=config)
    async for _ in result.stream_events():
        pass
    return (time.perf_counter() - started) * 1000


async def _durable(agent: Agent[Any], config: RunConfig) -> float:
    started = time.perf_counter()
    run = await timestep.run_agent(
        agent, "go", stream=True, run_config=config, workflow_id=new_id("bench-real")
    )
    async for _ in run.stream_events():
        pass
    await run.wait()
    return (time.perf_counter() - started) * 1000


async def realistic(kind: str, quick: bool, progress: Progress) -> dict[str, Any]:
    agent = Agent(name="bench-realistic", instructions="Answer.")
    words = " ".join(f"w{i}" for i in range(DELTAS))
    levels = LEVELS[:3] if quick else LEVELS
    task = progress.add_task(f"{kind}: (15) 300 ms model", total=len(levels))
    with provider_process(words, chunk_delay=GAP_SECONDS, delay=LATENCY_SECONDS) as fake:
        provider = fake.provider
        config = RunConfig(model_provider=provider)
        await _durable(agent, config)
        model_ms = sorted([await _plain(agent, config) for _ in range(5)])[2]
        out: dict[str, Any] = {"model_ms": model_ms, "levels": {}}
        sustained, within = 0, True
        for level in levels:
            samples: list[float] = []
            for _ in range(2 if quick else 3):  # a few waves of `level` runs at once
                samples += await asyncio.gather(*(_durable(agent, config) for _ in range(level)))
            figures = summary(samples)
            figures["p95_over_model"] = figures["p95_ms"] / model_ms
            out["levels"][str(level)] = figures
            within = within and figures["p95_over_model"] <= WITHIN
            if within:  # the most in flight with every level up to it within the bound
                sustained = level
            progress.advance(task)
        out["sustained_in_flight"] = sustained
    return out
