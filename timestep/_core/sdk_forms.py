"""The SDK's objects in portable JSON form, and back: stream events, run items, responses.

A run's output keeps its items and model responses in these forms, and its DBOS stream its
events. A run's stream (``protocol.STREAM_KEY``) holds what ``Runner.run_streamed`` emitted, in its
order, for readers in any process:

====================================  =============================================================
``{"t": "raw", "data": {...}}``       one raw model event (``RawResponsesStreamEvent.data``)
``{"t": "raws", "data": [...]}``      several raw events written together (a backlog)
``{"t": "item", "name", "item"}``     a ``RunItemStreamEvent``; the item in the SDK's RunState form
``{"t": "agent", "agent": name}``     an ``AgentUpdatedStreamEvent``
``{"t": "begin", "host": step}``      a step began writing (one per attempt of the step)
``{"t": "end", "error": {...}}``      the run ended; with the error's class and message if it failed
``{"t": "batch", "entries": [...]}``  several of the above written together, in one transaction
====================================  =============================================================

Only steps and the workflow's own stream writes (each checkpointed with its write, in one
transaction) write to the stream, so a replay writes nothing again. A step that crashed
mid-way and ran again wrote ``begin`` twice: ``settled`` drops what the attempt that never
checkpointed wrote, so a reader that comes later sees each event once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agents import Agent
from agents._run_state_agent_identity import _build_agent_identity_keys_by_id, _iter_agent_graph
from agents.items import ModelResponse, RunItem
from agents.run_state import RunState, _deserialize_items
from agents.stream_events import (
    AgentUpdatedStreamEvent,
    RawResponsesStreamEvent,
    RunItemStreamEvent,
    StreamEvent,
)
from agents.usage import deserialize_usage, serialize_usage
from openai.types.responses import ResponseOutputItem, ResponseStreamEvent
from pydantic import TypeAdapter

__all__ = [
    "EVENT_KINDS",
    "agent_identity_keys",
    "decode_entry",
    "decode_items",
    "decode_responses",
    "encode_event",
    "encode_item",
    "encode_items",
    "encode_responses",
    "flat",
    "model_call_usage",
    "raw_event",
    "settled",
]

EVENT_KINDS = frozenset({"raw", "raws", "item", "agent", "batch"})
"""The entry kinds that carry events (the others are markers; a batch may hold both)."""

_RAW_EVENT: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
_OUTPUT_ITEM: TypeAdapter[ResponseOutputItem] = TypeAdapter(ResponseOutputItem)


def encode_responses(responses: list[ModelResponse]) -> list[dict[str, Any]]:
    """Model responses: their output items, usage and ids."""
    return [
        {
            "output": [item.model_dump(mode="json", by_alias=True) for item in response.output],
            "usage": serialize_usage(response.usage),
            "response_id": response.response_id,
            "request_id": response.request_id,
        }
        for response in responses
    ]


def decode_responses(forms: Iterable[Mapping[str, Any]]) -> list[ModelResponse]:
    return [
        ModelResponse(
            output=[_OUTPUT_ITEM.validate_python(item) for item in form["output"]],
            usage=deserialize_usage(form["usage"]),
            response_id=form.get("response_id"),
            request_id=form.get("request_id"),
        )
        for form in forms
    ]


def encode_items(items: Iterable[RunItem], starting_agent: Agent[Any]) -> list[dict[str, Any]]:
    """``encode_item`` of each item, the agent graph's identity keys computed once (they cost
    more than the items: every agent's definition is normalised)."""
    keys = agent_identity_keys(starting_agent)
    return [encode_item(item, identity_keys=keys) for item in items]


def encode_item(
    item: RunItem,
    starting_agent: Agent[Any] | None = None,
    *,
    identity_keys: dict[int, str] | None = None,
) -> dict[str, Any]:
    """A run item in the SDK's own RunState form (agents by name or identity key); pass the
    graph's ``identity_keys`` (``agent_identity_keys``) to encode several items of one run."""
    keys = identity_keys
    if keys is None and starting_agent is not None:
        keys = agent_identity_keys(starting_agent)
    # RunState._serialize_item uses nothing of the state but its arguments.
    serialized: dict[str, Any] = RunState._serialize_item(
        None,  # type: ignore[arg-type]
        item,
        agent_identity_keys_by_id=keys,
    )
    return serialized


def decode_items(
    items: Iterable[dict[str, Any]], agents: Mapping[str, Agent[Any]]
) -> list[RunItem]:
    """Run items back from ``encode_item``'s form, with their agents found by name."""
    return _deserialize_items(list(items), dict(agents))


def agent_identity_keys(starting_agent: Agent[Any]) -> dict[int, str]:
    """The identity keys ``encode_item`` gives the agents of ``starting_agent``'s graph.

    Where every name in the graph is unique the SDK's key of each agent is its name; only
    duplicated names need its ranking, which normalises every agent's whole definition."""
    agents = list(_iter_agent_graph(starting_agent))
    if len({agent.name for agent in agents}) == len(agents):
        return {id(agent): agent.name for agent in agents}
    return _build_agent_identity_keys_by_id(starting_agent)


def encode_event(
    event: StreamEvent,
    starting_agent: Agent[Any] | None = None,
    *,
    identity_keys: dict[int, str] | None = None,
) -> dict[str, Any]:
    if isinstance(event, RawResponsesStreamEvent):
        return {"t": "raw", "data": event.data.model_dump(mode="json", by_alias=True)}
    if isinstance(event, RunItemStreamEvent):
        item = encode_item(event.item, starting_agent, identity_keys=identity_keys)
        return {"t": "item", "name": event.name, "item": item}
    return {"t": "agent", "agent": event.new_agent.name}


def raw_event(data: Mapping[str, Any]) -> ResponseStreamEvent:
    return _RAW_EVENT.validate_python(data)


def flat(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The entries ``entry`` stands for: a batch's, in order, or itself."""
    if entry.get("t") == "batch":
        return list(entry["entries"])
    return [entry]


def decode_entry(entry: Mapping[str, Any], agents: Mapping[str, Agent[Any]]) -> list[StreamEvent]:
    """The SDK stream events an entry holds (none for a marker)."""
    kind = entry.get("t")
    if kind == "batch":
        return [event for each in flat(entry) for event in decode_entry(each, agents)]
    if kind == "raw":
        return [RawResponsesStreamEvent(data=raw_event(entry["data"]))]
    if kind == "raws":
        return [RawResponsesStreamEvent(data=raw_event(data)) for data in entry["data"]]
    if kind == "item":
        (item,) = decode_items([entry["item"]], agents)
        return [RunItemStreamEvent(name=entry["name"], item=item)]
    if kind == "agent":
        return [AgentUpdatedStreamEvent(new_agent=agents[entry["agent"]])]
    return []


def settled(
    entries: Iterable[tuple[int, Mapping[str, Any]]],
) -> list[tuple[int, Mapping[str, Any]]]:
    """``(offset, entry)`` pairs without what aborted step attempts wrote (a batch's entries
    each with the batch's offset).

    A second ``begin`` of the same step means the entries since its first ``begin`` came from
    an attempt that never checkpointed (a crash mid-step, a retry, history a rewind
    discarded): they, and whatever followed them, are dropped."""
    kept: list[tuple[int, Mapping[str, Any]]] = []
    begun: dict[Any, int] = {}
    for offset, entry in ((o, each) for o, batch in entries for each in flat(batch)):
        if entry.get("t") == "begin":
            host = entry.get("host")
            if host in begun:
                cut = begun[host]
                del kept[cut:]
                begun = {h: i for h, i in begun.items() if i < cut}
            begun[host] = len(kept)
        kept.append((offset, entry))
    return kept


def model_call_usage(result: Any) -> tuple[int, int, int] | None:
    """(input, output, cached input) tokens of a model step's result: a ``ModelResponse``,
    a streamed call's checkpoint, or a collected event list."""
    usage: Any = None
    if isinstance(result, dict) and "completed" in result:
        usage = (result["completed"].get("response") or {}).get("usage")
    elif isinstance(result, list):
        for event in reversed(result):
            response = getattr(event, "response", None)
            if getattr(event, "type", None) == "response.completed" and response is not None:
                usage = response.usage
                break
    else:
        usage = getattr(result, "usage", None)
    if usage is None:
        return None
    if isinstance(usage, dict):
        details = usage.get("input_tokens_details") or {}
        return (
            int(usage.get("input_tokens") or 0),
            int(usage.get("output_tokens") or 0),
            int(details.get("cached_tokens") or 0),
        )
    details = getattr(usage, "input_tokens_details", None)
    return (
        int(getattr(usage, "input_tokens", 0) or 0),
        int(getattr(usage, "output_tokens", 0) or 0),
        int(getattr(details, "cached_tokens", 0) or 0),
    )
