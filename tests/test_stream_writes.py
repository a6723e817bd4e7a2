"""What a streamed run writes to its DBOS stream, and as which operations: a model call's
events gathered into few writes, the tail as one workflow write, and the layout of runs
started before that (a ``stream:tail`` step per round), replayed as it was."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from agents import Agent, function_tool
from agents.stream_events import RawResponsesStreamEvent
from dbos import DBOS, SetWorkflowID

import timestep
from timestep import approve, get_pending_approvals, run_agent
from timestep._client.inspection import fork_run
from timestep._core.protocol import STREAM_KEY
from timestep._core.sdk_forms import decode_entry, flat, settled
from timestep.testing import function_call, text
from timestep.workflows._agent_run import agent_run_workflow

pytestmark = pytest.mark.usefixtures("durable")

AGENT_NAME = "stream-writes"
WORDS = " ".join(f"w{i}" for i in range(20))


@function_tool(needs_approval=True)
def ship(order_id: str) -> str:
    """Ship an order (a human must approve)."""
    return f"shipped {order_id}"


def _agent() -> Agent:
    return Agent(name=AGENT_NAME, instructions="Answer.", tools=[ship])


async def _stream_values(workflow_id: str) -> list[dict]:
    return [value async for value in DBOS.read_stream_async(workflow_id, STREAM_KEY)]


def _raw_events(values: list[dict]) -> list[Any]:
    """The raw model events the stream's entries hold, as a reader elsewhere decodes them."""
    agents = {AGENT_NAME: _agent()}
    return [
        event.data
        for value in values
        for event in decode_entry(value, agents)
        if isinstance(event, RawResponsesStreamEvent)
    ]


async def _step_names(workflow_id: str) -> list[str]:
    return [s["function_name"] for s in await DBOS.list_workflow_steps_async(workflow_id)]


async def test_a_model_calls_events_go_to_the_stream_in_a_few_writes(fake_model):
    # 20 deltas 2 ms apart: the first write goes at once, the rest gather for 50 ms each.
    fake_model.add_turns(text(WORDS, chunk_delay=0.002))
    run = await run_agent(_agent(), "go", stream=True)
    live = [e.data async for e in run.stream_events() if e.type == "raw_response_event"]
    assert run.final_output == WORDS

    values = await _stream_values(run.workflow_id)
    written = _raw_events(values)
    assert [event.type for event in written] == [event.type for event in live]
    assert "".join(e.delta for e in written if e.type == "response.output_text.delta") == WORDS
    writes_with_raws = [v for v in values if _raw_events([v])]
    assert len(live) > 20 and len(writes_with_raws) <= 8  # not one write per event


async def test_the_tail_is_one_workflow_write(fake_model):
    fake_model.add_turns(text("Done."))
    run = await run_agent(_agent(), "go", stream=True)
    async for _ in run.stream_events():
        pass
    names = await _step_names(run.workflow_id)
    assert names[-1] == "DBOS.writeStream" and names.count("DBOS.writeStream") == 1
    assert "stream:tail" not in names
    last = (await _stream_values(run.workflow_id))[-1]
    kinds = [entry["t"] for entry in flat(last)]
    assert kinds[-1] == "end" and "item" in kinds  # the message item, then the end, together


async def test_a_run_waiting_for_approvals_writes_its_tail_before_it_waits(fake_model):
    fake_model.add_turns(
        function_call("ship", {"order_id": "S1"}, call_id="call_s1"), text("Shipped.")
    )
    run = await run_agent(_agent(), "ship S1", stream=True, wait_for_approvals=True)
    names_seen: list[str] = []

    async def read() -> None:
        async for event in run.stream_events():
            if event.type == "run_item_stream_event":
                names_seen.append(event.name)

    reader = asyncio.ensure_future(read())
    for _ in range(1000):
        if await get_pending_approvals(run.workflow_id):
            break
        await asyncio.sleep(0.02)

    # While it waits, a reader attached by workflow id sees the call waiting for approval.
    async def asked() -> None:
        async for event in timestep.stream_run_events(run.workflow_id, _agent()):
            if getattr(event, "name", None) == "tool_called":
                return

    await asyncio.wait_for(asked(), 10)
    await approve(run.workflow_id, "call_s1")
    await asyncio.wait_for(reader, 30)
    assert run.final_output == "Shipped."
    assert "tool_output" in names_seen
    names = await _step_names(run.workflow_id)
    assert names.count("DBOS.writeStream") == 2 and "stream:tail" not in names


async def test_a_run_of_an_earlier_version_writes_its_tail_in_steps_and_replays_them(fake_model):
    """Runs started before ``tail_in_workflow`` wrote the tail in ``stream:tail`` steps (one
    after the round, one to close): they go on doing so, and a replay past them takes the
    same steps at the same places, or DBOS would find another operation where it looks."""
    agent = _agent()
    timestep.register_agent(agent)  # the earlier version's run is rebuilt from the registry
    fake_model.add_turns(text("Template."))
    template = await run_agent(agent, "go", stream=True)
    async for _ in template.stream_events():
        pass
    (status,) = await DBOS.list_workflows_async(workflow_ids=[template.workflow_id])
    request = dict(status.input["args"][0])
    assert request.pop("tail_in_workflow") is True
    request["input"] = "again"

    fake_model.add_turns(text(WORDS))
    earlier = f"earlier-{uuid.uuid4().hex}"
    with SetWorkflowID(earlier):
        handle = await DBOS.start_workflow_async(agent_run_workflow, request)
    assert (await handle.get_result())["final_output"] == WORDS
    names = await _step_names(earlier)
    assert names.count("stream:tail") == 2 and "DBOS.writeStream" not in names
    events = [entry["t"] for _, entry in settled(enumerate(await _stream_values(earlier)))]
    assert events[0] == "begin" and events[-1] == "end" and "item" in events

    # Replay past the model call (a fork from the first tail step): the same steps again.
    steps = await DBOS.list_workflow_steps_async(earlier)
    first_tail = min(s["function_id"] for s in steps if s["function_name"] == "stream:tail")
    timestep.set_model_provider(fake_model.provider())  # the fork runs on DBOS's own loop
    try:
        forked = await fork_run(earlier, first_tail)
        result = await timestep.get_run_result(forked, agent)
    finally:
        timestep.set_model_provider(None)
    assert result.final_output == WORDS
    assert await _step_names(forked) == names
