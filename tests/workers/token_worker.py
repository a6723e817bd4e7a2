"""A worker whose model calls share one token limit, or one budget, with another worker's.

usage: token_worker.py DATABASE_URL MODEL_BASE_URL PREFIX RUNS GO_FILE MODE

MODE ``tokens``: ``limit_provider(PREFIX, tokens=1000, per_seconds=2)``. MODE ``budget``: no
limit; the runs carry the tag ``tenant-PREFIX``, whose daily budget the test set. Each run is
one turn on model ``PREFIX/gpt-4.1`` with ``max_tokens=200``, asking ``<pid>-<n>`` padded to
the same length. Prints ``LAUNCHED``; once GO_FILE exists runs RUNS runs at once, prints
``RESULT <n> ok`` or ``RESULT <n> <error class>`` per run, then ``DONE``.
"""

from __future__ import annotations

import asyncio
import os
import sys

from agents import Agent, ModelSettings, OpenAIProvider, set_tracing_disabled

import timestep

DATABASE_URL, MODEL_BASE_URL, PREFIX, RUNS, GO_FILE, MODE = sys.argv[1:7]
set_tracing_disabled(True)

if MODE == "tokens":
    timestep.limit_provider(PREFIX, tokens=1000, per_seconds=2.0)
agent = Agent(
    name="token-worker-agent",
    instructions="Answer.",
    model=f"{PREFIX}/gpt-4.1",
    model_settings=ModelSettings(max_tokens=200),
)
timestep.register_agent(agent)


async def one(n: int) -> str:
    prompt = f"{os.getpid()}-{n}-".ljust(60, "x")
    tags = [f"tenant-{PREFIX}"] if MODE == "budget" else None
    try:
        result = await timestep.run_agent(agent, prompt, tags=tags)
    except Exception as exc:
        return type(exc).__name__
    assert result.final_output == "ok"
    return "ok"


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()
    print("LAUNCHED", flush=True)
    while not os.path.exists(GO_FILE):
        await asyncio.sleep(0.01)
    outcomes = await asyncio.gather(*(one(n) for n in range(int(RUNS))))
    for n, outcome in enumerate(outcomes):
        print(f"RESULT {n} {outcome}", flush=True)
    print("DONE", flush=True)
    while True:
        await asyncio.sleep(1)


asyncio.run(main())
