"""A run's DBOS event stream as Server-Sent Events, resumable with ``Last-Event-ID``.

The stream is durable and append-only, so a position in it is a stable event id: the SSE
``id:`` of the *k*-th event of entry *n* is ``n.k`` (``n`` alone when the entry holds one
event), and a client reconnecting with ``Last-Event-ID`` is served from the next event, after
any server restart, with nothing lost or repeated. When the run ends the stream closes and a
last ``end`` event (without an id, so it never moves the resume point) carries the run's
final status; then the response ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from timestep._client.inspection import find_run
from timestep._client.streams import event_records

__all__ = ["EventPosition", "parse_last_event_id", "sse_events"]

EventPosition = tuple[int, int]
"""(entry offset, event index in the entry)."""

_EVENT_ID = re.compile(r"^(\d{1,18})(?:\.(\d{1,6}))?$")


def parse_last_event_id(value: str | None) -> EventPosition | None:
    """The position of the last event a client has, or None; ValueError says what is wrong."""
    if value is None or value.strip() == "":
        return None
    match = _EVENT_ID.match(value.strip())
    if match is None:
        raise ValueError(
            "Last-Event-ID must be the id of an event this endpoint sent ('12' or '12.3'), "
            f"got {value!r}"
        )
    return int(match.group(1)), int(match.group(2) or 0)


def _frame(data: dict[str, Any], *, event_id: str | None = None, event: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return ("\n".join(lines) + "\n\n").encode()


async def sse_events(
    workflow_id: str, start: EventPosition, heartbeat_sec: float
) -> AsyncIterator[bytes]:
    """SSE frames of the run's events from ``start`` until the stream closes, with a comment
    every ``heartbeat_sec`` of silence (a run waiting for an approval may be quiet for days)."""
    offset, index = start
    records = event_records(workflow_id, offset, sub_offset=index)
    pending: asyncio.Future[Any] | None = None
    next_offset = offset
    try:
        yield b"retry: 1000\n\n"
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(records))
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_sec)
            if not done:
                yield b": keep-alive\n\n"
                continue
            task, pending = pending, None
            try:
                record = task.result()
            except StopAsyncIteration:
                break
            position = (
                f"{record['offset']}.{record['index']}"
                if record["index"]
                else str(record["offset"])
            )
            next_offset = record["offset"] + 1
            yield _frame(record, event_id=position)
        status = await find_run(workflow_id)
        yield _frame(
            {
                "type": "end",
                "workflow_id": workflow_id,
                "status": status.status if status else None,
                "next_offset": next_offset,
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
            await records.aclose()  # type: ignore[attr-defined]
