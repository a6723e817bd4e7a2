"""A streamed run with every kind of item: tool calls in parallel (one that raises, whose
output is the SDK's error text), an agent used as a tool (whose own run streams nothing), a
handoff, and a final answer streamed word by word. test_stream_parity runs it through plain
``Runner.run_streamed`` and through Timestep; tests/workers/stream_reader.py reads it back in
another process with the same agents."""

from __future__ import annotations

from typing import Any

from agents import Agent, function_tool
from agents.stream_events import (
    AgentUpdatedStreamEvent,
    RawResponsesStreamEvent,
    RunItemStreamEvent,
    StreamEvent,
)

from timestep.testing import RecordedRequest, Turn, function_calls, text
from timestep.testing import function_call as call

FINAL_WORDS = " ".join(f"word{i}" for i in range(30))


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"{city}: sunny"


@function_tool
def flaky(x: int) -> str:
    """A tool that fails."""
    raise RuntimeError(f"flaky failed on {x}")


helper = Agent(name="helper", instructions="helper: summarise.")
specialist = Agent(name="specialist", instructions="specialist: answer in detail.")
triage = Agent(
    name="triage",
    instructions="triage: route the question.",
    tools=[get_weather, flaky, helper.as_tool(tool_name="ask_helper", tool_description="Ask.")],
    handoffs=[specialist],
)


def respond(request: RecordedRequest) -> Turn:
    """The model's answers, by agent (from the instructions) and by turn (tool outputs)."""
    body = request.json if isinstance(request.json, dict) else {}
    agent = str(body.get("instructions") or "").split(":", 1)[0]
    items = body.get("input")
    outputs = sum(
        1
        for i in (items if isinstance(items, list) else [])
        if isinstance(i, dict) and i.get("type") == "function_call_output"
    )
    if agent == "helper":
        return text("Helper says hi.")
    if agent == "specialist":
        return text(FINAL_WORDS, chunk_delay=0.002)
    if outputs == 0:
        return function_calls(("get_weather", {"city": "Lisbon"}), ("flaky", {"x": 1}))
    if outputs == 2:
        return call("ask_helper", {"input": "summarise"})
    return call("transfer_to_specialist", {})


def signature(event: StreamEvent) -> tuple[Any, ...]:
    """What a stream event is, to compare sequences: its class, name, raw event type, agent
    and (for items) the raw item's type and call id, and outputs."""
    if isinstance(event, RawResponsesStreamEvent):
        data = event.data
        return ("raw", data.type, getattr(data, "delta", None))
    if isinstance(event, RunItemStreamEvent):
        item = event.item
        raw = item.raw_item
        raw_type = raw.get("type") if isinstance(raw, dict) else getattr(raw, "type", None)
        call_id = raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", None)
        output = getattr(item, "output", None)
        return (
            "item",
            event.name,
            type(item).__name__,
            item.agent.name,
            raw_type,
            call_id,
            str(output) if output is not None else None,
        )
    assert isinstance(event, AgentUpdatedStreamEvent)
    return ("agent", event.new_agent.name)
