"""A worker whose runs wait for what the provider said of its limits: a test SIGKILLs it while
they wait, and starts it again.

usage: feedback_crash_worker.py DATABASE_URL MODEL_BASE_URL PREFIX STATE_DIR

Declares ``limit_provider(PREFIX)`` (no numbers: only the provider's own word limits it) and
prints ``LAUNCHED`` (DBOS's launch has recovered the runs a killed incarnation left). Then it
watches STATE_DIR for files ``run-<workflow id>``, each holding a prompt: it runs a one-turn
run of it under that workflow id (the same id again after a restart: it attaches to the
recovered run) and prints ``RESULT <workflow id> <final output>``, or ``RESULT <workflow id>
ERROR <error class>``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from agents import Agent, ModelSettings, OpenAIProvider, set_tracing_disabled

import timestep

DATABASE_URL, MODEL_BASE_URL, PREFIX, STATE_DIR = sys.argv[1:5]
set_tracing_disabled(True)

timestep.limit_provider(PREFIX)
agent = Agent(
    name="feedback-crash-agent",
    instructions="Answer.",
    model=f"{PREFIX}/gpt-4.1",
    model_settings=ModelSettings(max_tokens=100),
)
timestep.register_agent(agent)


async def one(workflow_id: str, prompt: str) -> None:
    try:
        result = await timestep.run_agent_workflow(agent, prompt, workflow_id=workflow_id)
    except Exception as exc:
        print(f"RESULT {workflow_id} ERROR {type(exc).__name__}: {exc}", flush=True)
        return
    print(f"RESULT {workflow_id} {result.final_output}", flush=True)


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()
    print("LAUNCHED", flush=True)
    started: dict[str, asyncio.Task[None]] = {}
    while True:
        for go in sorted(Path(STATE_DIR).glob("run-*")):
            workflow_id = go.name.removeprefix("run-")
            if workflow_id not in started and (prompt := go.read_text().strip()):
                started[workflow_id] = asyncio.create_task(one(workflow_id, prompt))
        await asyncio.sleep(0.02)


asyncio.run(main())
