"""The worker process ``timestep demo`` kills and restarts (``python -m timestep.cli._demo_worker``).

usage: DATABASE_URL MODEL_BASE_URL WORKFLOW_ID CALLS_FILE
"""

from __future__ import annotations

import asyncio
import os
import sys

from agents import OpenAIProvider, set_tracing_disabled

import timestep
from timestep.cli import _demo


async def _main(database_url: str, base_url: str, workflow_id: str, calls_file: str) -> None:
    os.environ[_demo.CALLS_FILE_ENV] = calls_file
    timestep.set_model_provider(OpenAIProvider(base_url=base_url, api_key="demo"))
    timestep.configure_dbos(database_url, log_level="WARNING")
    timestep.ensure_dbos_launched()  # a restarted worker recovers the killed run here
    result = await timestep.run_agent_workflow(
        _demo.crash_demo_agent, "What's the weather in Porto?", workflow_id=workflow_id
    )
    print(f"RESULT {result.final_output}", flush=True)


if __name__ == "__main__":
    set_tracing_disabled(True)
    asyncio.run(_main(*sys.argv[1:5]))
