"""A run's live events, from its DBOS stream, in any process.

The stream is durable and append-only: entry *n* is the same for every reader, so an offset
is a stable position to resume from. Its entries are the SDK's stream events in portable
form (``timestep._core.sdk_forms``). ``stream_run_events`` gives the SDK's event objects,
with their agents from the given agent's graph; ``event_records`` gives JSON-able records
(for SSE and ``timestep events --json``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from agents import Agent
from agents.stream_events import RawResponsesStreamEvent, StreamEvent

from timestep._core.protocol import STREAM_KEY
from timestep._core.registry import agent_graph
from timestep._core.sdk_forms import EVENT_KINDS, decode_entry, flat

from .system import stream_polling_interval, system

__all__ = [
    "EventRecord",
    "event_records",
    "read_run_stream",
    "stream_run_events",
]

EventRecord = dict[str, Any]


async def read_run_stream(workflow_id: str, offset: int = 0) -> AsyncGenerator[Any, None]:
    """The raw entries of a run's event stream from ``offset``, until the run closes it."""
    async for entry in system().read_stream_async(
        workflow_id, STREAM_KEY, offset=offset, polling_interval_sec=stream_polling_interval()
    ):
        yield entry


async def stream_run_events(
    workflow_id: str, agent: Agent[Any], *, offset: int = 0
) -> AsyncIterator[StreamEvent]:
    """Follow a run's events by workflow id, from any process: the sequence the SDK's
    ``Runner.run_streamed`` produced, event for event, from entry ``offset`` on.

    The run must have been started streaming (``stream=True``); the events end when it does.

    Args:
        workflow_id: The run's workflow id.
        agent: The run's agent: its graph gives the events their agents.
        offset: The stream entry to start from (0: the beginning).

    Yields:
        The SDK's stream events, in order.
    """
    agents = agent_graph(agent)
    async for entry in read_run_stream(workflow_id, offset):
        for event in _events_of(entry, agents):
            yield event


def _events_of(entry: Any, agents: Mapping[str, Agent[Any]]) -> list[StreamEvent]:
    if isinstance(entry, Mapping):
        return decode_entry(entry, agents)
    if isinstance(entry, tuple | list) and entry and entry[0] == "raw":
        return [RawResponsesStreamEvent(data=entry[1])]  # a stream written before Timestep 0.2
    return []


async def event_records(
    workflow_id: str, offset: int = 0, *, sub_offset: int = 0
) -> AsyncIterator[EventRecord]:
    """Every event from entry ``offset`` (skipping its first ``sub_offset`` events) as a
    JSON-able record with its position: ``offset`` (the entry) and ``index`` (the event in
    that entry)."""
    position = offset
    async for entry in read_run_stream(workflow_id, offset):
        for index, record in enumerate(_records_of(entry)):
            if position == offset and index < sub_offset:
                continue
            yield {**record, "offset": position, "index": index}
        position += 1


def _records_of(entry: Any) -> list[EventRecord]:
    if not isinstance(entry, Mapping):
        if isinstance(entry, tuple | list) and entry and entry[0] == "raw":
            return [dict(entry[1].model_dump(mode="json", by_alias=True, exclude_none=True))]
        return []
    kind = entry.get("t")
    if kind == "batch":
        return [record for each in flat(entry) for record in _records_of(each)]
    if kind == "raw":
        return [dict(entry["data"])]
    if kind == "raws":
        return [dict(data) for data in entry["data"]]
    if kind == "item":
        item = entry["item"]
        return [
            {
                "type": "run_item_stream_event",
                "name": entry["name"],
                "item_type": item.get("type"),
                "agent": (item.get("agent") or {}).get("name"),
                "raw_item": item.get("raw_item"),
                **({"output": item["output"]} if "output" in item else {}),
            }
        ]
    if kind == "agent":
        return [{"type": "agent_updated_stream_event", "agent": entry["agent"]}]
    assert kind not in EVENT_KINDS
    return []  # markers ("begin", "end")
