"""A worker whose model calls follow what the provider says of its rate limits, like another
worker's on the same database.

usage: feedback_worker.py DATABASE_URL MODEL_BASE_URL PREFIX GO_DIR NAME

Declares ``limit_provider(PREFIX)`` (no numbers: only the provider's own word limits it) and
prints ``LAUNCHED``. Then, phase by phase (1, 2, ...), it waits for GO_DIR/NAME-<phase>, which
holds a number N, starts N one-turn runs at once (asking ``NAME-<phase>-<n>``), and prints
``PHASE <phase> <outcomes>``: ``ok`` or the error class per run.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from agents import Agent, ModelSettings, OpenAIProvider, set_tracing_disabled

import timestep

DATABASE_URL, MODEL_BASE_URL, PREFIX, GO_DIR, NAME = sys.argv[1:6]
set_tracing_disabled(True)

timestep.limit_provider(PREFIX)
agent = Agent(
    name="feedback-worker-agent",
    instructions="Answer.",
    model=f"{PREFIX}/gpt-4.1",
    model_settings=ModelSettings(max_tokens=100),
)
timestep.register_agent(agent)


async def one(prompt: str) -> str:
    try:
        result = await timestep.run_agent(agent, prompt)
    except Exception as exc:
        return type(exc).__name__
    return "ok" if result.final_output == "ok" else repr(result.final_output)


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()
    print("LAUNCHED", flush=True)
    phase = 1
    while True:
        go = Path(GO_DIR) / f"{NAME}-{phase}"
        while not go.exists() or not go.read_text().strip():
            await asyncio.sleep(0.01)
        runs = int(go.read_text())
        outcomes = await asyncio.gather(*(one(f"{NAME}-{phase}-{n}") for n in range(runs)))
        print(f"PHASE {phase} {' '.join(outcomes)}", flush=True)
        phase += 1


asyncio.run(main())
