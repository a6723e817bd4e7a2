"""(1)-(4): what durability costs, per run and per step, on one 3-turn agent.

(1) the plain SDK ``Runner`` (no durability: the floor); (2) a bare DBOS workflow with the
same number of steps (DBOS's own cost); (3) Timestep's ``run_agent_workflow``; (4)
dbos-openai-agents' ``DBOSRunner`` on the same agent, if it is installed. Every contender runs
the same agent (two no-op tool calls, then an answer) on the in-process zero-latency model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agents import RunConfig, Runner
from dbos import DBOS
from rich.progress import Progress

import timestep

from ._agents import BENCH_AGENT
from ._common import ZeroLatencyProvider, measure_interleaved, new_id

STEPS_PER_RUN = 5  # 3 model calls + 2 tool calls


@DBOS.step()
async def _noop_step() -> str:
    return "x"


@DBOS.workflow(name="bench.bare_workflow")
async def bare_workflow() -> str:
    for _ in range(STEPS_PER_RUN):
        await _noop_step()
    return "done"


async def plain_runner() -> None:
    result = await Runner.run(
        BENCH_AGENT, "go", run_config=RunConfig(model_provider=ZeroLatencyProvider())
    )
    assert result.final_output == "done"


async def bare_dbos() -> None:
    assert await bare_workflow() == "done"


async def timestep_run() -> None:
    result = await timestep.run_agent_workflow(BENCH_AGENT, "go", workflow_id=new_id("bench"))
    assert result.final_output == "done"


def _dbos_runner() -> Callable[[], Awaitable[None]] | None:
    try:
        from dbos_openai_agents import DBOSRunner
    except ImportError:
        return None

    @DBOS.workflow(name="bench.dbos_runner_workflow")
    async def dbos_runner_workflow() -> str:
        result = await DBOSRunner.run(
            BENCH_AGENT, "go", run_config=RunConfig(model_provider=ZeroLatencyProvider())
        )
        return str(result.final_output)

    async def run() -> None:
        assert await dbos_runner_workflow() == "done"

    return run


DBOS_RUNNER = _dbos_runner()  # registered at import: DBOS wants workflows before launch

CONTENDERS: dict[str, tuple[str, Callable[[], Awaitable[None]] | None]] = {
    "plain_runner": ("(1) plain Runner", plain_runner),
    "bare_dbos": (f"(2) bare DBOS, {STEPS_PER_RUN} steps", bare_dbos),
    "timestep": ("(3) Timestep", timestep_run),
    "dbos_openai_agents": ("(4) DBOSRunner", DBOS_RUNNER),
}


async def run(kind: str, runs: int, progress: Progress) -> dict[str, Any]:
    """Must run inside ``launched(url)``: the contenders take turns, one run each."""
    fns = {key: fn for key, (_, fn) in CONTENDERS.items() if fn is not None}
    figures: dict[str, Any] = await measure_interleaved(
        fns, runs, progress, f"{kind}: (1)-(4), interleaved"
    )
    return {"contenders": figures, "ratios": ratios(figures), "steps_per_run": STEPS_PER_RUN}


def ratios(figures: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for q in ("p50", "p95"):
        ts, bare, plain = (figures[k][f"{q}_ms"] for k in ("timestep", "bare_dbos", "plain_runner"))
        out[f"timestep_over_bare_dbos_{q}"] = ts / bare
        out[f"timestep_over_floor_{q}"] = ts / (plain + bare)
        out[f"timestep_per_step_overhead_ms_{q}"] = (ts - plain) / STEPS_PER_RUN
        out[f"bare_dbos_per_step_ms_{q}"] = bare / STEPS_PER_RUN
        if "dbos_openai_agents" in figures:
            out[f"timestep_over_dbos_openai_agents_{q}"] = (
                ts / figures["dbos_openai_agents"][f"{q}_ms"]
            )
    return out
