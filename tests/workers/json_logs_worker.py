"""Runs one agent with TIMESTEP_LOG_FORMAT=json (set by the test); a tool logs a line."""

import asyncio
import logging
import sys

from agents import Agent, function_tool

import timestep
from timestep.testing import FakeModelServer, function_call, text


@function_tool
def lookup(order_id: str) -> str:
    """Look an order up."""
    logging.getLogger("timestep.test").warning("looking up %s", order_id)
    return f"order {order_id}: paid"


async def main() -> None:
    server = FakeModelServer()
    server.start()
    server.add_turns(function_call("lookup", {"order_id": "J1"}), text("J1 is paid."))
    timestep.set_model_provider(server.provider())
    timestep.configure_dbos(sys.argv[1])
    timestep.ensure_dbos_launched()
    result = await timestep.run_agent(Agent(name="json-logs", tools=[lookup]), "J1?", None)
    print(result.workflow_id)
    server.stop()


asyncio.run(main())
