"""A worker that declares a schedule in code and runs until killed (two of them share a database).

usage: schedule_worker.py DATABASE_URL MODEL_BASE_URL STATE_DIR SCHEDULE_NAME

The agent's tool appends ``start <idempotency key>`` and ``done <idempotency key> <pid>`` to
STATE_DIR/fires.log; the key starts with the fire's workflow id, so the test can tell which
fire ran the tool, how often, and in which process.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from agents import Agent, OpenAIProvider, function_tool, set_tracing_disabled

import timestep

DATABASE_URL, MODEL_BASE_URL, STATE_DIR, SCHEDULE_NAME = sys.argv[1:5]
set_tracing_disabled(True)


def _log(line: str) -> None:
    with open(Path(STATE_DIR) / "fires.log", "a") as f:
        f.write(line + "\n")


@function_tool
async def record() -> str:
    """Record that this fire ran."""
    key = timestep.tool_idempotency_key()
    _log(f"start {key}")
    await asyncio.sleep(0.2)  # long enough for a kill to land mid-call now and then
    _log(f"done {key} {os.getpid()}")
    return "recorded"


agent = Agent(name="schedule-worker-agent", instructions="Record.", tools=[record])
timestep.register_agent(agent)
# Declared in code before launch in every worker: applied at launch, never duplicated.
timestep.schedule_agent(SCHEDULE_NAME, agent, "record this fire", "* * * * * *")


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()
    print("LAUNCHED", flush=True)
    while True:
        await asyncio.sleep(1)


asyncio.run(main())
