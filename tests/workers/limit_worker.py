"""A worker whose model calls share one provider limit with another worker's.

usage: limit_worker.py DATABASE_URL MODEL_BASE_URL PREFIX RUNS GO_FILE

Declares ``limit_provider(PREFIX, requests=5, per_seconds=2)``, launches and prints
``LAUNCHED``; once GO_FILE exists (so both workers start together) it runs RUNS one-turn agent
runs at once on model ``PREFIX/gpt-4.1``, each asking ``<pid>-<n>``, and prints ``DONE``.
"""

from __future__ import annotations

import asyncio
import os
import sys

from agents import Agent, OpenAIProvider, set_tracing_disabled

import timestep

DATABASE_URL, MODEL_BASE_URL, PREFIX, RUNS, GO_FILE = sys.argv[1:6]
set_tracing_disabled(True)

timestep.limit_provider(PREFIX, requests=5, per_seconds=2.0)
agent = Agent(name="limit-worker-agent", instructions="Answer.", model=f"{PREFIX}/gpt-4.1")
timestep.register_agent(agent)


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()
    print("LAUNCHED", flush=True)
    while not os.path.exists(GO_FILE):
        await asyncio.sleep(0.01)
    runs = [timestep.run_agent(agent, f"{os.getpid()}-{n}") for n in range(int(RUNS))]
    results = await asyncio.gather(*runs)
    assert [result.final_output for result in results] == ["ok"] * len(results)
    print("DONE", flush=True)
    while True:
        await asyncio.sleep(1)


asyncio.run(main())
