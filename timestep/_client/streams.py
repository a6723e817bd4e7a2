"""A run's live events, from its DBOS stream, in any process.

The stream is durable and append-only: entry *n* is the same for every reader, so an offset
is a stable position to resume from. ``stream_run_events`` gives SDK stream events;
``event_records`` gives JSON-able records (for SSE and ``timestep events --json``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from agents import Agent
from agents.items import MessageOutputItem, ToolCallItem, ToolCallOutputItem
from agents.stream_events import RawResponsesStreamEvent, RunItemStreamEvent, StreamEvent
from openai.types.responses import ResponseOutputItemDoneEvent

from timestep._core.protocol import STREAM_KEY

from .system import stream_polling_interval, system

__all__ = ["event_record", "event_records", "read_run_stream", "stream_run_events"]


async def read_run_stream(workflow_id: str, offset: int = 0) -> AsyncGenerator[Any, None]:
    """The raw entries of a run's event stream from ``offset``, until the run closes it."""
    async for entry in system().read_stream_async(
        workflow_id, STREAM_KEY, offset=offset, polling_interval_sec=stream_polling_interval()
    ):
        yield entry


async def stream_run_events(workflow_id: str, agent: Agent[Any]) -> AsyncIterator[StreamEvent]:
    """Follow a run's live events by workflow id, from any process.

    Raw model events come as ``RawResponsesStreamEvent``; finished output items and tool
    outputs also as ``RunItemStreamEvent`` (as the SDK's streaming runner emits them).
    """
    async for entry in read_run_stream(workflow_id):
        kind = entry[0]
        if kind == "raw":
            event = entry[1]
            yield RawResponsesStreamEvent(data=event)
            if isinstance(event, ResponseOutputItemDoneEvent):
                item = _run_item_for(event.item, agent)
                if item is not None:
                    yield item
        elif kind == "tool_output":
            _, call_id, _tool_name, output = entry
            raw = {"type": "function_call_output", "call_id": call_id, "output": str(output)}
            yield RunItemStreamEvent(
                name="tool_output",
                item=ToolCallOutputItem(agent=agent, raw_item=raw, output=output),
            )


def _run_item_for(item: Any, agent: Agent[Any]) -> RunItemStreamEvent | None:
    kind = getattr(item, "type", None)
    if kind == "message":
        return RunItemStreamEvent(
            name="message_output_created", item=MessageOutputItem(agent=agent, raw_item=item)
        )
    if kind == "function_call":
        return RunItemStreamEvent(name="tool_called", item=ToolCallItem(agent=agent, raw_item=item))
    return None


def event_record(offset: int, entry: Any) -> dict[str, Any]:
    """One stream entry as JSON-able data."""
    kind = entry[0]
    if kind == "raw":
        data: dict[str, Any] = entry[1].model_dump(mode="json", exclude_none=True)
        data["offset"] = offset
        return data
    if kind == "tool_output":
        _, call_id, tool, output = entry
        return {
            "offset": offset,
            "type": "tool_output",
            "call_id": call_id,
            "tool": tool,
            "output": str(output),
        }
    return {"offset": offset, "type": str(kind)}


async def event_records(workflow_id: str, offset: int = 0) -> AsyncIterator[dict[str, Any]]:
    """``event_record`` of every entry from ``offset``, until the run closes its stream."""
    position = offset
    async for entry in read_run_stream(workflow_id, offset=offset):
        yield event_record(position, entry)
        position += 1
