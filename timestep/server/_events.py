"""A run's DBOS event stream as Server-Sent Events, resumable with ``Last-Event-ID``.

The stream is durable and append-only, so an entry's index is a stable event id: the SSE
``id:`` of entry *n* is *n*, and a client reconnecting with ``Last-Event-ID: n`` is served from
entry *n + 1*, after any server restart, with nothing lost or repeated. When the run ends the
stream closes and a last ``end`` event (without an id, so it never moves the resume point)
carries the run's final status; then the response ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from timestep._client.runs import find_run
from timestep._client.streams import event_record, read_run_stream

__all__ = [
    "parse_last_event_id",
    "sse_events",
]


def parse_last_event_id(value: str | None) -> int | None:
    """The offset to resume after, or None; ValueError says what is wrong with ``value``."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        raise ValueError(
            f"Last-Event-ID must be the id of an event this endpoint sent (an integer >= 0), "
            f"got {value!r}"
        )
    return int(text)


def _frame(data: dict[str, Any], *, event_id: int | None = None, event: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return ("\n".join(lines) + "\n\n").encode()


async def sse_events(workflow_id: str, offset: int, heartbeat_sec: float) -> AsyncIterator[bytes]:
    """SSE frames of the run's stream from ``offset`` until it closes, with a comment every
    ``heartbeat_sec`` of silence (a run waiting for an approval may be quiet for days)."""
    entries = read_run_stream(workflow_id, offset=offset)
    position = offset
    pending: asyncio.Future[Any] | None = None
    try:
        yield b"retry: 1000\n\n"
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(entries))
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_sec)
            if not done:
                yield b": keep-alive\n\n"
                continue
            task, pending = pending, None
            try:
                entry = task.result()
            except StopAsyncIteration:
                break
            yield _frame(event_record(position, entry), event_id=position)
            position += 1
        status = await find_run(workflow_id)
        yield _frame(
            {
                "type": "end",
                "workflow_id": workflow_id,
                "status": status.status if status else None,
                "next_offset": position,
            },
            event="end",
        )
    finally:
        # The client went away (or the stream ended): stop the read under way before closing
        # the generator, which refuses to close while a read of it is running.
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        with contextlib.suppress(Exception):
            await entries.aclose()
