"""A worker whose model calls share one token limit, or one budget, with another worker's.

usage: token_worker.py DATABASE_URL MODEL_BASE_URL PREFIX RUNS GO_FILE

Declares ``limit_provider(PREFIX, tokens=1000, per_seconds=2)`` and prints ``LAUNCHED``. Once
GO_FILE exists it starts, all at once, RUNS runs and RUNS more tagged ``tenant-PREFIX`` (whose
daily budget the test set). Each run is one turn on model ``PREFIX/gpt-4.1`` with
``max_tokens=200``, asking ``<pid>-<n>`` padded to the same length. Prints ``RESULT <kind> <n>
ok`` or ``RESULT <kind> <n> <error class>`` per run (kind ``plain`` or ``tagged``), then
``DONE``.
"""

from __future__ import annotations

import asyncio
import os
import sys

from agents import Agent, ModelSettings, OpenAIProvider, set_tracing_disabled

import timestep

DATABASE_URL, MODEL_BASE_URL, PREFIX, RUNS, GO_FILE = sys.argv[1:6]
set_tracing_disabled(True)

timestep.limit_provider(PREFIX, tokens=1000, per_seconds=2.0)
agent = Agent(
    name="token-worker-agent",
    instructions="Answer.",
    model=f"{PREFIX}/gpt-4.1",
    model_settings=ModelSettings(max_tokens=200),
)
timestep.register_agent(agent)


async def one(n: int, tagged: bool) -> str:
    prompt = f"{os.getpid()}-{n}-".ljust(60, "x")
    tags = [f"tenant-{PREFIX}"] if tagged else None
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
    runs = [(n, tagged) for tagged in (False, True) for n in range(int(RUNS))]
    outcomes = await asyncio.gather(*(one(n, tagged) for n, tagged in runs))
    for (n, tagged), outcome in zip(runs, outcomes, strict=True):
        print(f"RESULT {'tagged' if tagged else 'plain'} {n} {outcome}", flush=True)
    print("DONE", flush=True)
    while True:
        await asyncio.sleep(1)


asyncio.run(main())
