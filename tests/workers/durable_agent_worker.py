"""A worker process for crash tests: runs one durable agent run, printing markers as it goes.

usage: durable_agent_worker.py DATABASE_URL MODEL_BASE_URL STATE_DIR WORKFLOW_ID SCENARIO

Tools append to STATE_DIR/calls.log ("start <tool> <call>" / "done <tool> <call>") so the test
can count executions across process restarts. A tool blocks while STATE_DIR/hold-<tool> exists.
SCENARIO: "plain" (run, print RESULT, exit), "stream" (the same, streamed live) or "linger"
(as plain, then stay up until killed).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from agents import Agent, OpenAIProvider, function_tool, set_tracing_disabled

import timestep

DATABASE_URL, MODEL_BASE_URL, STATE_DIR, WORKFLOW_ID, SCENARIO = sys.argv[1:6]
state_dir = Path(STATE_DIR)
set_tracing_disabled(True)


def _log(line: str) -> None:
    with open(state_dir / "calls.log", "a") as f:
        f.write(line + "\n")
        f.flush()


async def _tool_body(name: str, value: str) -> str:
    from agents import RunContextWrapper  # noqa: F401  (the SDK is imported; keep the body plain)

    key = timestep.tool_idempotency_key()
    _log(f"start {name} {value} {key}")
    print(f"TOOL_START {name} {value}", flush=True)
    while (state_dir / f"hold-{name}").exists():
        await asyncio.sleep(0.02)
    _log(f"done {name} {value} {key}")
    return f"{name}({value}) ok"


@function_tool
async def lookup(item: str) -> str:
    """Look an item up."""
    return await _tool_body("lookup", item)


@function_tool
async def fetch(item: str) -> str:
    """Fetch an item."""
    return await _tool_body("fetch", item)


@function_tool
async def slow(item: str) -> str:
    """A tool the test holds open."""
    return await _tool_body("slow", item)


agent = Agent(name="crash-test-agent", instructions="Use the tools.", tools=[lookup, fetch, slow])
timestep.register_agent(agent)


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()  # recovers the run if a previous worker was killed
    print("LAUNCHED", flush=True)
    session = timestep.Session(f"session-{WORKFLOW_ID}")
    if SCENARIO == "stream":  # stream the run live (and attach again after a restart)
        run = await timestep.run_agent(agent, "go", session, stream=True, workflow_id=WORKFLOW_ID)
        async for _ in run.stream_events():
            pass
        result = await run.wait()
    else:
        result = await timestep.run_agent_workflow(agent, "go", session, workflow_id=WORKFLOW_ID)
    print("RESULT " + json.dumps({"final_output": result.final_output}), flush=True)
    if SCENARIO == "linger":  # stay up after the run, for the test to kill
        await asyncio.Event().wait()


asyncio.run(main())
