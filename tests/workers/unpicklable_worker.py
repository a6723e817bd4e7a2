"""A worker for the unpicklable-values crash test: one run whose tool returns an object
holding a lock and whose agent's output type is a class local to a function (neither can be
pickled); prints ``RESULT {...}`` with what the caller gets.

usage: unpicklable_worker.py DATABASE_URL MODEL_BASE_URL GRABS_LOG WORKFLOW_ID

Killed mid-way and started again with the same arguments, it registers the same agent before
DBOS launches, so the launch recovers the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading

from agents import Agent, OpenAIProvider, function_tool, set_tracing_disabled

import timestep

DATABASE_URL, MODEL_BASE_URL, GRABS_LOG, WORKFLOW_ID = sys.argv[1:5]
set_tracing_disabled(True)


class Holder:
    """A tool output DBOS cannot pickle: it holds a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __str__(self) -> str:
        return "held 7"


@function_tool
def grab() -> Holder:
    """Returns an object holding a lock."""
    with open(GRABS_LOG, "a") as log:
        log.write("grab\n")
    return Holder()


def build() -> Agent:
    @dataclasses.dataclass
    class Answer:  # defined inside a function: pickle cannot find it
        n: int

    return Agent(name="unpicklable", instructions="Grab.", tools=[grab], output_type=Answer)


agent = build()
timestep.register_agent(agent)


async def main() -> None:
    timestep.configure_dbos(DATABASE_URL)
    timestep.set_model_provider(OpenAIProvider(base_url=MODEL_BASE_URL, api_key="test-key"))
    timestep.ensure_dbos_launched()  # recovers the run if a previous worker was killed
    result = await timestep.run_agent_workflow(agent, "go", workflow_id=WORKFLOW_ID)
    outputs = [str(getattr(i, "output", None)) for i in result.new_items if hasattr(i, "output")]
    record = {"final_output": result.final_output, "tool_outputs": outputs}
    print("RESULT " + json.dumps(record, default=repr), flush=True)


asyncio.run(main())
