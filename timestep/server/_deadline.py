"""A deadline on every request: an answer within ``TIMESTEP_API_REQUEST_TIMEOUT_SEC`` or a 503.

Timestep's own queries fail within the database connect timeout, but DBOS blocks on a lost
database connection and retries until it is back (a workflow must not lose a step), and the
routes call DBOS. So a route that has not started its answer when the deadline passes is
cancelled and answered 503. A streaming answer (``/runs/{id}/events``) that has started is
left alone: the deadline covers the time to its first byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestDeadline"]


class RequestDeadline:
    """ASGI middleware: 503 when the response has not started within ``seconds``."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = asyncio.Event()

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set()
            await send(message)

        async def handle() -> None:
            await self.app(scope, receive, send_and_note)

        handler = asyncio.create_task(handle())
        waiter = asyncio.create_task(started.wait())
        try:
            await asyncio.wait(
                {handler, waiter}, timeout=self.seconds, return_when="FIRST_COMPLETED"
            )
        finally:
            waiter.cancel()
        if started.is_set() or handler.done():
            await handler  # the answer (or its error) as the route made it
            return
        handler.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await handler
        if started.is_set():  # it began answering while being cancelled: nothing to add
            return
        await _send_503(
            send,
            f"no answer within {self.seconds:g} s (TIMESTEP_API_REQUEST_TIMEOUT_SEC): "
            "the database is not answering",
        )


async def _send_503(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
