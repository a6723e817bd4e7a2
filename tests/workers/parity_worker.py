"""A worker for the parity recovery test: runs every recoverable scenario of
tests/parity_scenarios.py at once, each under its own workflow id, and prints each result.

usage: parity_worker.py DATABASE_URL MODEL_BASE_URL FOLDER RUN_ID

Killed mid-way and started again with the same arguments, it registers the same agents and
types before DBOS launches (as a worker that imports its application would), so the launch
recovers the runs, and waits for them by their workflow ids.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.*

from agents import OpenAIProvider, set_tracing_disabled

import timestep
from tests import parity_scenarios as sc

DATABASE_URL, MODEL_BASE_URL, FOLDER, RUN_ID = sys.argv[1:5]
set_tracing_disabled(True)


def _item(item: object) -> list[object]:
    raw = item.raw_item  # type: ignore[attr-defined]
    dumped = raw.model_dump(mode="json") if hasattr(raw, "model_dump") else raw
    return [type(item).__name__, item.agent.name, dumped, getattr(item, "output", None)]  # type: ignore[attr-defined]


async def main() -> None:
    folder = Path(FOLDER)
    runs = []
    for scenario in sc.SCENARIOS:
        if not scenario.recoverable:
            continue
        agent, given, kwargs = scenario.build(folder)
        timestep.register_agent(agent)
        runs.append((scenario.name, agent, given, kwargs))
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()  # recovers the runs a killed worker left
    print("LAUNCHED", flush=True)

    async def one(name: str, agent: object, given: object, kwargs: dict) -> None:
        workflow_id = f"{RUN_ID}-{name}"
        try:
            result = await timestep.run_agent_workflow(
                agent, given, workflow_id=workflow_id, **kwargs
            )  # type: ignore[arg-type]
        except Exception as exc:
            record = {"scenario": name, "error": [type(exc).__name__, str(exc)]}
            print("RESULT " + json.dumps(record), flush=True)
            return
        else:
            record = {
                "final_output": result.final_output,
                "items": [_item(i) for i in result.new_items],
                "last_agent": result.last_agent.name,
            }
        print("RESULT " + json.dumps({"scenario": name, **record}, default=str), flush=True)

    await asyncio.gather(*(one(*run) for run in runs))
    print("ALL DONE", flush=True)


asyncio.run(main())
