"""``timestep runs list --stale``: runs waiting on an older definition of their agent."""

from __future__ import annotations

import asyncio
import json

import pytest
from agents import Agent, function_tool
from dbos import DBOS
from typer.testing import CliRunner

import timestep
from timestep import approve, get_pending_approvals, start_agent_run
from timestep._client.inspection import fork_run, list_stale_runs
from timestep.errors import AgentDefinitionChangedError
from timestep.testing import function_call, text
from timestep.workflows._run_objects import rebuild_run_objects

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


@function_tool
def pack(order_id: str) -> str:
    """Pack an order."""
    return f"packed {order_id}"


FORKED_AGENT = Agent(name="fork-onto-new-agent", instructions="Pack orders.", tools=[pack])
timestep.register_agent(FORKED_AGENT)  # on_definition_change="fail"


async def test_a_fork_goes_on_with_the_new_definition_under_fail(fake_model):
    # A recovered run whose agent changed fails (AgentDefinitionChangedError); forking it is
    # how it is moved onto the new definition, from the step it is forked at.
    fake_model.add_turns(function_call("pack", {"order_id": "P1"}), text("Packed."))
    first = await timestep.run_agent(FORKED_AGENT, "pack P1", None)
    steps = await DBOS.list_workflow_steps_async(first.workflow_id)
    last_model_step = max(
        s["function_id"] for s in steps if s["function_name"].startswith("model:")
    )
    FORKED_AGENT.instructions = "Pack orders, carefully."  # a redeploy changed the agent
    try:
        fake_model.add_turns(text("Packed, carefully."))
        # DBOS runs the fork on its own event loop: a provider whose connections are not
        # bound to this test's loop.
        timestep.set_model_provider(fake_model.provider())
        forked = await fork_run(first.workflow_id, last_model_step)
        result = await timestep.get_run_result(forked, FORKED_AGENT)
        assert result.final_output == "Packed, carefully."
        # The steps before the fork replayed (one model call, the tool); the rest ran anew.
        assert len(fake_model.requests) == 3
        assert fake_model.requests[-1].json["instructions"] == "Pack orders, carefully."
        with pytest.raises(AgentDefinitionChangedError, match="instructions changed"):
            rebuild_run_objects(await _request_of(first.workflow_id))  # not a fork: fails
    finally:
        FORKED_AGENT.instructions = "Pack orders."


async def _request_of(workflow_id: str):
    (status,) = await DBOS.list_workflows_async(workflow_ids=[workflow_id])
    return status.input["args"][0]
