"""``timestep runs list --stale``: runs waiting on an older definition of their agent."""

from __future__ import annotations

import asyncio
import json

import pytest
from agents import Agent, function_tool
from typer.testing import CliRunner

import timestep
from timestep import approve, get_pending_approvals, start_agent_run
from timestep._client.inspection import list_stale_runs
from timestep.testing import function_call, text

pytestmark = pytest.mark.usefixtures("durable")


@function_tool(needs_approval=True)
def ship(order_id: str) -> str:
    """Ship an order."""
    return f"shipped {order_id}"


STALE_AGENT = Agent(name="stale-agent", instructions="Ship orders.", tools=[ship])
timestep.register_agent(STALE_AGENT, on_definition_change="continue")


async def test_a_waiting_run_shows_as_stale_after_its_agent_changed(fake_model):
    fake_model.add_turns(
        function_call("ship", {"order_id": "S1"}, call_id="call_s1"), text("Shipped.")
    )
    handle = await start_agent_run(STALE_AGENT, "ship S1", None, wait_for_approvals=True)
    for _ in range(500):
        if await get_pending_approvals(handle.workflow_id):
            break
        await asyncio.sleep(0.02)
    assert handle.workflow_id not in {r["workflow_id"] for r in await list_stale_runs()}
    STALE_AGENT.instructions = "Ship orders, politely."  # a redeploy changed the agent
    try:
        (row,) = [r for r in await list_stale_runs() if r["workflow_id"] == handle.workflow_id]
        assert row["status"] == "PENDING" and row["agent"] == "stale-agent"
        assert row["changes"] == ["agent 'stale-agent': instructions changed"]
        from timestep.cli import app

        out = await asyncio.to_thread(
            CliRunner().invoke, app, ["runs", "list", "--stale", "--json"]
        )
        assert out.exit_code == 0, out.output
        listed = {r["workflow_id"]: r for r in json.loads(out.stdout)}
        assert listed[handle.workflow_id]["changes"] == row["changes"]
        await approve(handle.workflow_id, "call_s1")  # "continue": finishes on the new one
        assert (await handle.result()).final_output == "Shipped."
    finally:
        STALE_AGENT.instructions = "Ship orders."
