"""(9) Memory over many runs: a long-running process must not grow with the runs it served.

Two workloads, each ``runs`` durable runs in one process on the zero-latency model:

- every run builds a new ``Agent`` (a backend building agents per request, per tenant);
- every run raises (``MaxTurnsExceeded``: one turn allowed, the model calls a tool).

RSS is sampled every ``runs // 10`` runs after a warm-up of ``runs // 10``; the figure is the
growth per 10,000 runs (least squares over the samples), target under 5 MB. Live Python objects
of the agent and result types are counted at the end, to show what stays alive, if anything.
"""

from __future__ import annotations

import gc
import resource
from typing import Any

from agents import Agent, function_tool
from agents.exceptions import MaxTurnsExceeded
from rich.progress import Progress

import timestep
from timestep._core.process import process_state

from ._common import new_id


@function_tool
def noop() -> str:
    """Does nothing."""
    return "ok"


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _slope_per_10k(samples: list[tuple[int, float]]) -> float:
    n = len(samples)
    mean_x = sum(x for x, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    var = sum((x - mean_x) ** 2 for x, _ in samples)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in samples)
    return (cov / var) * 10_000 if var else 0.0


async def _workload(kind: str, label: str, runs: int, progress: Progress) -> dict[str, Any]:
    task = progress.add_task(f"{kind}: memory, {label}", total=runs)
    warmup = max(1, runs // 10)
    samples: list[tuple[int, float]] = []
    for index in range(runs + warmup):
        if label == "new agent per run":
            agent = Agent(name=f"tenant-{index % 1000}", instructions=f"Tenant {index}.")
            await timestep.run_agent(agent, "hi", workflow_id=new_id("mem"))
        else:
            agent = Agent(name="raiser", instructions="Loop.", tools=[noop])
            try:
                await timestep.run_agent(agent, "hi", max_turns=1, workflow_id=new_id("mem"))
            except MaxTurnsExceeded:
                pass
            else:
                raise AssertionError("the run was meant to raise MaxTurnsExceeded")
        if index >= warmup:
            progress.advance(task)
            if (index - warmup) % max(1, runs // 10) == 0 or index == runs + warmup - 1:
                gc.collect()
                samples.append((index - warmup, _rss_mb()))
    gc.collect()
    await timestep.flush_records()
    process = process_state()
    alive_agents = sum(1 for o in gc.get_objects() if isinstance(o, Agent))
    return {
        "runs": runs,
        "rss_start_mb": round(samples[0][1], 1),
        "rss_end_mb": round(samples[-1][1], 1),
        "growth_mb_per_10k_runs": round(_slope_per_10k(samples), 2),
        "samples": [(x, round(y, 1)) for x, y in samples],
        "live_runs_left": len(process.live_runs),
        "agent_refs_left": len(process.agent_refs),
        "agents_alive": alive_agents,
    }


async def run(kind: str, runs: int, progress: Progress) -> dict[str, Any]:
    """Both workloads, one after the other, in the launched process."""
    return {
        label: await _workload(kind, label, runs, progress)
        for label in ("new agent per run", "every run raises")
    }
