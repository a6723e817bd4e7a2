"""The benchmarks' agents, importable by ``module:attr`` so worker processes can recover runs.

Every agent uses the in-process ``ZeroLatencyModel`` and no-op tools: what is measured is the
frameworks' own cost."""

from __future__ import annotations

import asyncio
import os
import time

from agents import Agent, ModelSettings, function_tool
from dbos import DBOS

import timestep

from ._common import ZeroLatencyModel

# Perf-counter time at which each resumed approval tool started, by workflow id.
APPROVED_TOOL_STARTED: dict[str, float] = {}
# Tool bodies started in this process (the recovery worker counts its in-flight runs).
HOLD_STARTED = 0


@function_tool
def noop_a() -> str:
    """Do nothing."""
    return "a"


@function_tool
def noop_b() -> str:
    """Do nothing."""
    return "b"


# The same no-ops as DBOS steps, the way dbos-openai-agents makes tools durable (its contender
# (4d) then checkpoints every tool call, as Timestep does).
@function_tool(name_override="noop_a")
@DBOS.step(name="bench.noop_a")
def noop_a_step() -> str:
    """Do nothing."""
    return "a"


@function_tool(name_override="noop_b")
@DBOS.step(name="bench.noop_b")
def noop_b_step() -> str:
    """Do nothing."""
    return "b"


@function_tool(needs_approval=True)
def approve_me() -> str:
    """A no-op a human must approve."""
    if DBOS.workflow_id is not None:
        APPROVED_TOOL_STARTED[DBOS.workflow_id] = time.perf_counter()
    return "approved"


async def hold_in_flight() -> str:
    """Blocks forever while BENCH_HOLD=1 (the run stays in flight until its worker dies)."""
    global HOLD_STARTED
    HOLD_STARTED += 1
    if os.environ.get("BENCH_HOLD") == "1":
        await asyncio.Event().wait()
    return "held"


hold = function_tool(hold_in_flight, name_override="hold")


# A Model instance, not a name: DBOSRunner replaces the run's model provider with its own.
BENCH_AGENT = Agent(
    name="bench-agent", instructions="Benchmark.", tools=[noop_a, noop_b], model=ZeroLatencyModel()
)
BENCH_AGENT_STEP_TOOLS = Agent(
    name="bench-agent-step-tools",
    instructions="Benchmark.",
    tools=[noop_a_step, noop_b_step],
    model=ZeroLatencyModel(),
)
APPROVAL_AGENT = Agent(
    name="bench-approval-agent",
    instructions="Benchmark.",
    tools=[approve_me],
    model=ZeroLatencyModel(),
)
HOLD_AGENT = Agent(
    name="bench-hold-agent", instructions="Benchmark.", tools=[hold], model=ZeroLatencyModel()
)
# A model *name* with a provider prefix, so its calls go through the provider's rate limit.
LIMITED_AGENT = Agent(
    name="bench-limited-agent", instructions="Benchmark.", tools=[noop_a], model="bench/zero"
)

# One model call per run, under each provider prefix the token benchmark (11) limits.
TOKEN_AGENTS = {
    prefix: Agent(
        name=f"bench-{prefix}-agent",
        instructions="Benchmark.",
        model=f"{prefix}/zero",
        model_settings=ModelSettings(max_tokens=5),
    )
    for prefix in ("benchtok", "benchplain", "benchreq", "benchcap", "benchbudget")
}

for _agent in (BENCH_AGENT, APPROVAL_AGENT, HOLD_AGENT, LIMITED_AGENT, *TOKEN_AGENTS.values()):
    timestep.register_agent(_agent)
