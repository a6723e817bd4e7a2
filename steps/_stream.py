"""Publishing a durable run's stream: the SDK's own events, live in process and in DBOS.

The workflow runs ``Runner.run_streamed`` and its ``StreamPublisher`` is the one consumer of
``stream_events()``. Each event goes at once, as the SDK's object, to the subscribers in this
process (the caller of ``run_agent(stream=True)``). For other processes the events go into the
run's DBOS stream (``timestep._core.sdk_forms``), written only by steps, so a replay never
writes twice:

- a model call's step writes its raw events as the provider sends them, preceded by the run
  items the SDK emitted since the previous model call (``pending``), which the publisher hands
  it when the SDK delivers the call's first raw event;
- the ``stream:tail`` step writes what the SDK emitted after the last model call.

When a model call is replayed its step body does not run: its checkpoint yields just the
``response.completed`` event, and the items pending at that call are dropped, because the step
wrote them before it checkpointed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from agents import Agent
from agents.result import RunResultStreaming
from agents.stream_events import RawResponsesStreamEvent, StreamEvent
from dbos import DBOS, WorkflowSerializationFormat

from timestep._core.protocol import STREAM_KEY
from timestep._core.sdk_forms import agent_identity_keys, encode_event

__all__ = ["ModelCallHost", "StreamPublisher", "write_stream_entries"]

TAIL_STEP = "stream:tail"


@dataclass
class ModelCallHost:
    """A live model step waiting for the items to write before its raw events."""

    pending: asyncio.Future[list[dict[str, Any]]]


@dataclass
class StreamPublisher:
    """The consumer of one streamed run's events (see the module docstring)."""

    starting_agent: Agent[Any]
    subscribers: list[asyncio.Queue[StreamEvent | None]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    # id(first raw event of a model call) -> (the event, its live step or None if replayed);
    # holding the event keeps its id unique until the SDK delivers it.
    _firsts: dict[int, tuple[Any, ModelCallHost | None]] = field(default_factory=dict)
    # The agent graph's identity keys, computed at the first item (they cost more than it).
    _identity_keys: dict[int, str] | None = None

    def first_event_of_call(self, event: Any, host: ModelCallHost | None) -> None:
        self._firsts[id(event)] = (event, host)

    async def consume(self, result: RunResultStreaming) -> None:
        """Forward every event of ``result`` until its stream ends (or raises)."""
        async for event in result.stream_events():
            for queue in self.subscribers:
                queue.put_nowait(event)
            if isinstance(event, RawResponsesStreamEvent):
                first = self._firsts.pop(id(event.data), None)
                if first is not None:
                    pending, self.pending = self.pending, []
                    host = first[1]
                    if host is not None and not host.pending.done():
                        host.pending.set_result(pending)
            else:
                if self._identity_keys is None:
                    self._identity_keys = agent_identity_keys(self.starting_agent)
                self.pending.append(encode_event(event, identity_keys=self._identity_keys))

    def close_subscribers(self) -> None:
        for queue in self.subscribers:
            queue.put_nowait(None)

    async def write_tail(self, *, close: bool, error: dict[str, Any] | None = None) -> None:
        """Write what the SDK emitted after its last model call, as a step of its own; with
        ``close``, the run's events are complete."""
        pending, self.pending = self.pending, []
        if not pending and not close:
            return
        await DBOS.run_step_async({"name": TAIL_STEP}, _write_tail, pending, close, error)


async def _write_tail(
    pending: list[dict[str, Any]], close: bool, error: dict[str, Any] | None
) -> None:
    entries = [{"t": "begin", "host": DBOS.step_id}, *pending]
    if close:
        # Readers stop when the workflow ends (DBOS ends their reads then), so its status is
        # final by the time they look; this marker says the events are complete, and why not.
        entries.append({"t": "end", "error": error})
    await write_stream_entries(entries)


async def write_stream_entries(entries: list[dict[str, Any]]) -> None:
    """Append entries to the run's stream, from inside a step (no checkpoint of their own).

    Stored as portable JSON: any process (or language) reads them without unpickling. All of
    them as one entry (a ``batch``), so one transaction, in one trip to DBOS's thread pool
    (the step's context goes along): a step's first write (``begin``, the items before it, its
    first events) and the tail are several entries, and runs in flight share the database."""
    if entries:
        entry = entries[0] if len(entries) == 1 else {"t": "batch", "entries": entries}
        await asyncio.to_thread(_write_entry, entry)


def _write_entry(entry: dict[str, Any]) -> None:
    DBOS.write_stream(STREAM_KEY, entry, serialization_type=WorkflowSerializationFormat.PORTABLE)
