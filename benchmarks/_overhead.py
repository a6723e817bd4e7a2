"""(1)-(4): what durability costs, per run and per step, on one 3-turn agent.

(1) the plain SDK ``Runner`` (no durability: the floor); (2) a bare DBOS workflow with the
same number of steps (DBOS's own cost); (3) Timestep's ``run_agent_workflow``; (4)
dbos-openai-agents' ``DBOSRunner`` on the same agent, if it is installed, and (4d) the same with
its tools made durable the way its README says (``@DBOS.step()`` under ``@function_tool``), so
that it checkpoints as many steps as Timestep. Every contender runs the same agent (two no-op
tool calls, then an answer) on the in-process zero-latency model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agents import RunConfig, Runner
from dbos import DBOS
from rich.progress import Progress

import timestep

from ._agents import BENCH_AGENT, BENCH_AGENT_STEP_TOOLS
from ._common import ZeroLatencyProvider, measure_interleaved, new_id
from ._direct import direct_wiring

STEPS_PER_RUN = 5  # 3 model calls + 2 tool calls


@DBOS.step()
async def _noop_step() -> str:
    return "x"


@DBOS.workflow(name="bench.bare_workflow")
async def bare_workflow() -> str:
    for _ in range(STEPS_PER_RUN):
        await _noop_step()
    return "done"


# (2c): the same steps as (2), checkpointing what (3) checkpoints: its run request as the
# workflow's input, its model responses and tool outputs as the steps' outputs, its summary as
# the workflow's output. Captured from one Timestep run before measuring (see _capture).
_CHECKPOINTS: dict[str, Any] = {}


@DBOS.step()
async def _checkpoint_step(index: int) -> Any:
    return _CHECKPOINTS["steps"][index]


@DBOS.workflow(name="bench.bare_workflow_checkpoints")
async def bare_workflow_checkpoints(request: Any) -> Any:
    for index in range(STEPS_PER_RUN):
        await _checkpoint_step(index)
    return _CHECKPOINTS["output"]


async def _capture() -> None:
    workflow_id = new_id("bench-capture")
    await timestep.run_agent_workflow(BENCH_AGENT, "go", workflow_id=workflow_id)
    steps = await DBOS.list_workflow_steps_async(workflow_id)
    status = await DBOS.get_workflow_status_async(workflow_id)
    assert status is not None and len(steps) == STEPS_PER_RUN, [s["function_name"] for s in steps]
    _CHECKPOINTS.update(
        steps=[step["output"] for step in steps], input=status.input, output=status.output
    )


async def bare_dbos_checkpoints() -> None:
    args = _CHECKPOINTS["input"]["args"] if _CHECKPOINTS["input"] else ()
    assert await bare_workflow_checkpoints(*args) is not None


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


def _dbos_runner(agent: Any, workflow_name: str) -> Callable[[], Awaitable[None]] | None:
    try:
        from dbos_openai_agents import DBOSRunner
    except ImportError:
        return None

    @DBOS.workflow(name=workflow_name)
    async def dbos_runner_workflow() -> str:
        result = await DBOSRunner.run(
            agent, "go", run_config=RunConfig(model_provider=ZeroLatencyProvider())
        )
        return str(result.final_output)

    async def run() -> None:
        assert await dbos_runner_workflow() == "done"

    return run


# Registered at import: DBOS wants workflows before launch.
DBOS_RUNNER = _dbos_runner(BENCH_AGENT, "bench.dbos_runner_workflow")
DBOS_RUNNER_STEP_TOOLS = _dbos_runner(BENCH_AGENT_STEP_TOOLS, "bench.dbos_runner_step_tools")

CONTENDERS: dict[str, tuple[str, Callable[[], Awaitable[None]] | None]] = {
    "plain_runner": ("(1) plain Runner", plain_runner),
    "bare_dbos": (f"(2) bare DBOS, {STEPS_PER_RUN} steps", bare_dbos),
    "bare_dbos_checkpoints": ("(2c) bare DBOS, (3)'s checkpoints", bare_dbos_checkpoints),
    "direct_wiring": ("(2d) direct wiring of the same steps", direct_wiring),
    "timestep": ("(3) Timestep", timestep_run),
    "dbos_openai_agents": ("(4) DBOSRunner", DBOS_RUNNER),
    "dbos_openai_agents_step_tools": ("(4d) DBOSRunner, step tools", DBOS_RUNNER_STEP_TOOLS),
}


async def run(kind: str, runs: int, progress: Progress) -> dict[str, Any]:
    """Must run inside ``launched(url)``: the contenders take turns, one run each."""
    await _capture()
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
        if "bare_dbos_checkpoints" in figures:
            out[f"timestep_over_floor_with_checkpoints_{q}"] = ts / (
                plain + figures["bare_dbos_checkpoints"][f"{q}_ms"]
            )
        if "direct_wiring" in figures:
            out[f"timestep_over_direct_wiring_{q}"] = ts / figures["direct_wiring"][f"{q}_ms"]
        out[f"timestep_per_step_overhead_ms_{q}"] = (ts - plain) / STEPS_PER_RUN
        out[f"bare_dbos_per_step_ms_{q}"] = bare / STEPS_PER_RUN
        if "dbos_openai_agents" in figures:
            out[f"timestep_over_dbos_openai_agents_{q}"] = (
                ts / figures["dbos_openai_agents"][f"{q}_ms"]
            )
        if "dbos_openai_agents_step_tools" in figures:
            out[f"timestep_over_dbos_openai_agents_step_tools_{q}"] = (
                ts / figures["dbos_openai_agents_step_tools"][f"{q}_ms"]
            )
    return out
