"""A worker for the guardrail crash test: one durable run of tests/guardrail_agents.py's
guarded agent under a fixed workflow id; prints ``RESULT {...}``.

usage: guardrail_worker.py DATABASE_URL MODEL_BASE_URL WORKFLOW_ID

Killed mid-way and started again with the same arguments, it registers the same agent before
DBOS launches, so the launch recovers the run.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.*

from agents import OpenAIProvider, set_tracing_disabled

import timestep
from tests import guardrail_agents

DATABASE_URL, MODEL_BASE_URL, WORKFLOW_ID = sys.argv[1:4]
set_tracing_disabled(True)
provider = OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key", use_responses=True)
agent = guardrail_agents.build(provider)
timestep.register_agent(agent)


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(provider)
    timestep.ensure_dbos_launched()  # recovers the run if a previous worker was killed
    print("LAUNCHED", flush=True)
    result = await timestep.run_agent_workflow(agent, "add 2 and 3", workflow_id=WORKFLOW_ID)
    print("RESULT " + json.dumps({"final_output": result.final_output}), flush=True)


asyncio.run(main())
