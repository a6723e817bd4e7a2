"""Publishing a durable run's stream: the SDK's own events, live in process and in DBOS.

The workflow runs ``Runner.run_streamed`` and its ``StreamPublisher`` is the one consumer of
``stream_events()``. Each event goes at once, as the SDK's object, to the subscribers in this
process (the caller of ``run_agent(stream=True)``). For other processes the events go into the
run's DBOS stream (``timestep._core.sdk_forms``), written only by checkpointed operations,
so a replay never writes twice:

- a model call's step writes its raw events as the provider sends them (gathered for
  ``STREAM_FLUSH_SECONDS`` after its first write), preceded by the run items the SDK emitted
  since the previous model call (``pending``), which the publisher hands it when the SDK
  delivers the call's first raw event;
- the workflow writes what the SDK emitted after the last model call (``write_tail``; a
  ``stream:tail`` step in runs started by earlier versions).

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

__all__ = ["STREAM_FLUSH_SECONDS", "ModelCallHost", "StreamPublisher", "write_stream_entries"]

TAIL_STEP = "stream:tail"
_PORTABLE = WorkflowSerializationFormat.PORTABLE
# How long a model call's raw events gather before they go to the run's DBOS stream together
# (the first write goes at once). Readers in other processes see them this much later at
# most; the caller in this process gets each event as it arrives.
STREAM_FLUSH_SECONDS = 0.05


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
    # Whether the tail is a workflow operation (later runs) or a step (``write_tail``).
    tail_in_workflow: bool = False

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
        """Write what the SDK emitted after its last model call; with ``close``, the run's
        events are complete. From the workflow itself (``tail_in_workflow``): DBOS checks,
        writes and checkpoints a workflow's stream write in one transaction, where a step
        takes three; runs started before that wrote it as a step, and replay it so."""
        pending, self.pending = self.pending, []
        if not pending and not close:
            return
        if close:
            # Readers stop when the workflow ends (DBOS ends their reads then), so its status
            # is final by the time they look; this marker says the events are complete, and
            # why not.
            pending.append({"t": "end", "error": error})
        if self.tail_in_workflow:
            await DBOS.write_stream_async(
                STREAM_KEY, _one_entry(pending), serialization_type=_PORTABLE
            )
        else:
            await DBOS.run_step_async({"name": TAIL_STEP}, _write_tail, pending)


async def _write_tail(entries: list[dict[str, Any]]) -> None:
    await write_stream_entries([{"t": "begin", "host": DBOS.step_id}, *entries])


async def write_stream_entries(entries: list[dict[str, Any]]) -> None:
    """Append entries to the run's stream, from inside a step (no checkpoint of their own).

    Stored as portable JSON: any process (or language) reads them without unpickling. All of
    them as one entry (a ``batch``), so one transaction, in one trip to DBOS's thread pool
    (the step's context goes along): a step's first write (``begin``, the items before it, its
    first events) and the tail are several entries, and runs in flight share the database."""
    if entries:
        await asyncio.to_thread(_write_entry, _one_entry(entries))


def _one_entry(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return entries[0] if len(entries) == 1 else {"t": "batch", "entries": entries}


def _write_entry(entry: dict[str, Any]) -> None:
    DBOS.write_stream(STREAM_KEY, entry, serialization_type=_PORTABLE)
