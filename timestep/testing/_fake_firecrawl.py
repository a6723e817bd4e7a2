"""A real HTTP fake of Firecrawl's search API (v2), for offline tests of ``web_search``.

It listens on 127.0.0.1 (a free port), so the real HTTP client code runs end to end::

    with FakeFirecrawlServer() as firecrawl:
        firecrawl.queue_results([{"url": "https://example.com", "title": "Example"}])
        tool = make_web_search(api_key=firecrawl.api_key, base_url=firecrawl.base_url)
        ...
        assert firecrawl.requests[0].json == {"query": "...", "limit": 5}
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from ._http import LocalHTTPServer

__all__ = ["FakeFirecrawlServer", "FirecrawlRequest"]

_SEARCH_PATH = "/v2/search"


@dataclass(frozen=True)
class FirecrawlRequest:
    """One request the fake received."""

    method: str
    """The HTTP method."""
    path: str
    """The URL path, e.g. ``/v2/search``."""
    headers: Mapping[str, str]
    """Header names lower-cased (``request.headers["authorization"]``)."""
    json: Any
    """The decoded JSON body, or ``None`` if the body was empty or not JSON."""


@dataclass
class _Reply:
    status: int = 200
    body: Any = None
    delay: float = 0.0
    web: list[dict[str, Any]] | None = None
    news: list[dict[str, Any]] | None = None


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    replies: deque[_Reply] = field(default_factory=deque)
    requests: list[FirecrawlRequest] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)


class FakeFirecrawlServer(LocalHTTPServer):
    """Firecrawl's ``POST /v2/search`` on a local port, with scripted answers.

    - Every search answers the next queued reply (``queue_results``, ``queue_error``), or, when
      nothing is queued, ``default_results`` (by default one result echoing the query), cut to
      the request's ``limit`` like the real API.
    - ``api_key``: requests must send ``Authorization: Bearer <api_key>`` or get a 401, as from
      Firecrawl; ``None`` accepts any request.
    - ``requests`` logs every request (method, path, headers, JSON body), including failed ones.

    Used as a context manager it starts on entry and stops on exit.

    Args:
        api_key: The key requests must send, or None to accept any.
        default_results: The results when nothing is queued (default: one echoing the query).

    Attributes:
        api_key: The key requests must send, or None.
        default_results: The results when nothing is queued.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "fc-test-key",
        default_results: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.default_results = [dict(item) for item in default_results or ()]
        self._state = _State()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeFirecrawlServer:
        """Start serving on a free port.

        Returns:
            The server itself.

        Raises:
            RuntimeError: It is already running.
        """
        if self.running:
            raise RuntimeError("FakeFirecrawlServer is already running")
        self._state.stopping.clear()
        self._serve(_make_handler(self), "fake-firecrawl")
        return self

    def stop(self) -> None:
        """Stop serving (waking replies still sleeping on a delay); nothing if not running."""
        if not self.running:
            return
        self._state.stopping.set()  # wake handlers sleeping on a scripted delay
        self._shutdown()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: what ``FIRECRAWL_API_URL`` would hold."""
        return self.root_url

    # -- scripting ---------------------------------------------------------------------------

    def queue_results(
        self,
        web: Sequence[Mapping[str, Any]] = (),
        *,
        news: Sequence[Mapping[str, Any]] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next search with these results (``{"url", "title", "description"}``).

        Args:
            web: The web results, cut to the request's ``limit``.
            news: News results, sent as ``data.news`` when given.
            delay: Seconds to wait before answering.
        """
        reply = _Reply(
            web=[dict(item) for item in web],
            news=None if news is None else [dict(item) for item in news],
            delay=delay,
        )
        with self._state.lock:
            self._state.replies.append(reply)

    def queue_error(
        self, status: int, error: str | None = None, *, body: Any = None, delay: float = 0.0
    ) -> None:
        """Answer the next search with HTTP ``status`` and Firecrawl's error body.

        The body is ``{"success": false, "error": error}`` unless ``body`` (any JSON value, or
        ``str`` sent as-is) is given.

        Args:
            status: The HTTP status.
            error: The error message (default ``Simulated HTTP <status>``).
            body: The whole body instead.
            delay: Seconds to wait before answering.
        """
        if body is None:
            body = {"success": False, "error": error or f"Simulated HTTP {status}"}
        with self._state.lock:
            self._state.replies.append(_Reply(status=status, body=body, delay=delay))

    def queue_delay(self, seconds: float) -> None:
        """Answer the next search with the default results, but only after ``seconds``.

        Args:
            seconds: The delay.
        """
        with self._state.lock:
            self._state.replies.append(_Reply(delay=seconds))

    @property
    def requests(self) -> list[FirecrawlRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def search_requests(self) -> list[FirecrawlRequest]:
        """The ``POST /v2/search`` requests received so far."""
        return [r for r in self.requests if r.method == "POST" and r.path == _SEARCH_PATH]

    def reset(self) -> None:
        """Forget queued replies and logged requests."""
        with self._state.lock:
            self._state.replies.clear()
            self._state.requests.clear()

    # -- request handling (server threads) ---------------------------------------------------

    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Reply:
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        with self._state.lock:
            self._state.requests.append(FirecrawlRequest(method, path, headers, payload))

        if path != _SEARCH_PATH:
            return _Reply(status=404, body={"success": False, "error": f"Not found: {path}"})
        if method != "POST":
            return _Reply(status=405, body={"success": False, "error": "Method not allowed"})
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _Reply(
                status=401, body={"success": False, "error": "Unauthorized: Invalid token"}
            )
        if not isinstance(payload, dict):
            return _Reply(status=400, body={"success": False, "error": "Bad Request: query"})
        query = payload.get("query")
        if not isinstance(query, str) or not query:
            return _Reply(status=400, body={"success": False, "error": "Bad Request: query"})
        limit = payload.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            return _Reply(status=400, body={"success": False, "error": "Bad Request: limit"})

        with self._state.lock:
            reply = self._state.replies.popleft() if self._state.replies else _Reply()
        if reply.body is None:
            web = reply.web if reply.web is not None else self._default_web(query)
            data: dict[str, Any] = {"web": _positioned(web[:limit])}
            if reply.news is not None:
                data["news"] = _positioned(reply.news[:limit])
            reply.body = {"success": True, "data": data, "creditsUsed": 1}
        return reply

    def _default_web(self, query: str) -> list[dict[str, Any]]:
        if self.default_results:
            return [dict(item) for item in self.default_results]
        return [
            {
                "url": "https://example.com/search-result",
                "title": f"Result for {query}",
                "description": f"A page about {query}.",
            }
        ]


def _positioned(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**item, "position": item.get("position", i)} for i, item in enumerate(items, 1)]


def _make_handler(fake: FakeFirecrawlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Small writes go out at once: with Nagle's algorithm a kept-alive connection's next
        # response waited for the client's delayed ACK (~40 ms), a latency no real API adds.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = fake._handle(method, self.path.split("?", 1)[0], headers, raw)
            if reply.delay and fake._state.stopping.wait(reply.delay):
                return  # shutting down: drop the connection instead of answering late
            payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            data = payload.encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. its timeout fired during a scripted delay)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; the request log is fake.requests

    return Handler
