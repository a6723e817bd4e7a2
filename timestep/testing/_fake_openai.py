"""A real HTTP fake of the OpenAI API on 127.0.0.1, driven by a script of turns.

It speaks what the OpenAI client and the Agents SDK really send and parse: the Responses API
(JSON and SSE streaming) and Chat Completions (JSON and streaming, the path Ollama's
OpenAI-compatible endpoint uses), so the real client code runs end to end::

    from agents import Agent, OpenAIProvider, RunConfig, Runner
    from timestep.testing import FakeModelServer, function_call, text

    with FakeModelServer() as fake:
        fake.add_turns(function_call("get_weather", {"city": "Lisbon"}), text("Sunny."))
        provider = OpenAIProvider(base_url=fake.base_url, api_key="test")
        result = Runner.run_sync(agent, "weather?", run_config=RunConfig(model_provider=provider))
        assert fake.requests[1].json["input"][-1]["type"] == "function_call_output"

Turns are answered in order (``add_turns``), or by a ``responder`` that picks the turn from the
request itself (``conversation_script``: stateless, so a restarted worker replaying a run gets
the same answers). ``on_request`` lets a test act when a request arrives, e.g. SIGKILL a worker
at its Nth model call.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from agents import OpenAIProvider
from openai import AsyncOpenAI

from ._http import LocalHTTPServer

__all__ = [
    "FakeModelServer",
    "RecordedRequest",
    "Responder",
    "Turn",
    "conversation_script",
    "error",
    "function_call",
    "function_calls",
    "text",
]


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str
    """The arguments as the JSON string the API sends."""
    call_id: str


@dataclass(frozen=True)
class Turn:
    """One scripted model answer. Build it with ``text``, ``function_call(s)`` or ``error``."""

    text: str = ""
    """The assistant message (empty for a turn of tool calls)."""
    calls: tuple[ToolCall, ...] = ()
    """The tool calls the model makes."""
    status: int = 200
    """An HTTP status other than 200 makes this turn an API error."""
    error_message: str | None = None
    """An error turn's message (default: ``FakeModelServer scripted error <status>``)."""
    retry_after: float | None = None
    """An error turn's ``Retry-After``, in seconds."""
    delay: float = 0.0
    """Seconds to wait before answering at all (a slow model)."""
    chunk_delay: float = 0.0
    """Seconds between streamed text deltas, so a reader can see them arrive one by one."""
    usage: Mapping[str, int] | None = None
    """Override the token counts: input_tokens, output_tokens, cached_tokens, reasoning_tokens."""
    items: tuple[Mapping[str, Any], ...] = ()
    """Other output items, as the Responses API sends them (a ``shell_call``...)."""
    headers: Mapping[str, str] | None = None
    """Extra response headers, e.g. ``{"x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "2s"}``."""
    cut_after_events: int | None = None
    """Streamed: drop the connection after this many events, without ending the stream (a
    network cut mid-response)."""


def text(
    content: str,
    *,
    chunk_delay: float = 0.0,
    delay: float = 0.0,
    usage: Mapping[str, int] | None = None,
    headers: Mapping[str, str] | None = None,
    cut_after_events: int | None = None,
) -> Turn:
    """A final assistant message. Streamed, it arrives word by word.

    Args:
        content: The message's text.
        chunk_delay: Seconds between streamed words.
        delay: Seconds to wait before answering.
        usage: Token counts to report instead of the computed ones (``input_tokens``,
            ``output_tokens``, ``cached_tokens``, ``reasoning_tokens``).
        headers: Extra response headers (e.g. ``x-ratelimit-remaining-requests``).
        cut_after_events: Streamed: drop the connection after this many events, without
            ending the stream (a network cut mid-response).

    Returns:
        The turn.
    """
    return Turn(
        text=content,
        chunk_delay=chunk_delay,
        delay=delay,
        usage=usage,
        headers=headers,
        cut_after_events=cut_after_events,
    )


def function_call(
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    call_id: str | None = None,
    delay: float = 0.0,
    usage: Mapping[str, int] | None = None,
) -> Turn:
    """A turn in which the model calls one tool.

    Args:
        name: The tool's name.
        arguments: The tool's arguments (sent as JSON).
        call_id: The call's id (default: derived from the name and arguments, stable across
            replays).
        delay: Seconds to wait before answering.
        usage: Token counts to report instead of the computed ones (``input_tokens``,
            ``output_tokens``, ``cached_tokens``, ``reasoning_tokens``).

    Returns:
        The turn.
    """
    return function_calls((name, arguments or {}, call_id), delay=delay, usage=usage)


def function_calls(
    *calls: tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], str | None],
    delay: float = 0.0,
    usage: Mapping[str, int] | None = None,
) -> Turn:
    """A turn in which the model calls several tools at once (parallel tool calls).

    Each call is ``(name, arguments)`` or ``(name, arguments, call_id)``; a missing call id is
    derived from the name, arguments and position, so replays see the same ids.

    Args:
        *calls: The calls, in order.
        delay: Seconds to wait before answering.
        usage: Token counts to report instead of the computed ones (``input_tokens``,
            ``output_tokens``, ``cached_tokens``, ``reasoning_tokens``).

    Returns:
        The turn.
    """
    built = []
    for position, call in enumerate(calls):
        name, arguments = call[0], json.dumps(call[1] or {}, sort_keys=True)
        call_id = call[2] if len(call) > 2 else None
        if call_id is None:
            digest = hashlib.sha1(f"{position}:{name}:{arguments}".encode()).hexdigest()[:16]
            call_id = f"call_{digest}"
        built.append(ToolCall(name=name, arguments=arguments, call_id=call_id))
    return Turn(calls=tuple(built), delay=delay, usage=usage)


def output_items(*items: Mapping[str, Any]) -> Turn:
    """A turn whose output is the given Responses API items (``local_shell_call``,
    ``shell_call``, ``apply_patch_call``...), for the tools that are not function tools.

    Args:
        *items: The output items, as the Responses API sends them.

    Returns:
        The turn.
    """
    return Turn(items=tuple(items))


def error(
    status: int,
    *,
    retry_after: float | None = None,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Turn:
    """An API error: e.g. ``error(429, retry_after=0.1)`` or ``error(500)``.

    Args:
        status: The HTTP status, 400 or more.
        retry_after: Seconds sent as ``Retry-After`` (and ``retry-after-ms``).
        message: The error's message.
        headers: Extra response headers (e.g. ``x-ratelimit-reset-requests``).

    Returns:
        The turn.

    Raises:
        ValueError: ``status`` is below 400.
    """
    if status < 400:
        raise ValueError(f"an error turn needs a 4xx or 5xx status, got {status}")
    return Turn(status=status, retry_after=retry_after, error_message=message, headers=headers)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, in arrival order."""

    index: int
    """Position in ``FakeModelServer.requests`` (0 for the first request)."""
    method: str
    """The HTTP method."""
    path: str
    """The URL path, e.g. ``/v1/responses``."""
    headers: Mapping[str, str]
    """Header names lower-cased: ``request.headers["authorization"]``."""
    json: Any
    """The decoded JSON body (``None`` if it was not JSON)."""
    received_at: float = 0.0
    """``time.monotonic()`` when the request arrived."""

    @property
    def api(self) -> str:
        """``"responses"`` or ``"chat"``."""
        return "chat" if self.path.endswith("/chat/completions") else "responses"

    @property
    def streaming(self) -> bool:
        """Whether the request asked for a streamed answer."""
        return bool(isinstance(self.json, dict) and self.json.get("stream"))


Responder = Callable[[RecordedRequest], Turn]
"""Picks the answer to a request; see ``conversation_script``."""


def conversation_script(turns: Sequence[Turn]) -> Responder:
    """Answer by position in the conversation: the Nth model turn of a run gets ``turns[N]``.

    The position is read from the request (how many model turns its input already holds), not
    from a counter, so a worker that crashed and replays a run gets the same answer for the
    same point of the conversation. Past the end of the script it answers the last turn.

    Args:
        turns: The answers, in conversation order.

    Returns:
        The responder, for ``FakeModelServer(responder=...)``.

    Raises:
        ValueError: ``turns`` is empty.
    """
    script = list(turns)
    if not script:
        raise ValueError("conversation_script needs at least one turn")

    def respond(request: RecordedRequest) -> Turn:
        return script[min(model_turns_in(request), len(script) - 1)]

    return respond


def model_turns_in(request: RecordedRequest) -> int:
    """How many model answers the request's input already contains."""
    body = request.json if isinstance(request.json, dict) else {}
    if request.api == "chat":
        return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    items = body.get("input", [])
    if isinstance(items, str):
        return 0
    turns, inside = 0, False
    for item in items:
        # One model answer is a run of consecutive output items (messages from the assistant,
        # function calls, reasoning); tool outputs and user messages separate answers.
        is_output = item.get("type") in ("function_call", "reasoning") or (
            item.get("role") == "assistant"
        )
        if is_output and not inside:
            turns += 1
        inside = is_output
    return turns


_NO_TURN = Turn(status=400, error_message="FakeModelServer: no scripted turn left")


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)
    turns: deque[Turn] = field(default_factory=deque)
    default: Turn | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    hook: Callable[[RecordedRequest], Any] | None = None
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)


class FakeModelServer(LocalHTTPServer):
    """An OpenAI-compatible HTTP server on a free 127.0.0.1 port.

    - ``base_url`` (``http://127.0.0.1:PORT/v1``) goes to ``OpenAIProvider(base_url=...)``,
      ``AsyncOpenAI(base_url=...)`` or ``OllamaModelProvider(base_url=...)``.
    - ``POST /v1/responses`` and ``POST /v1/chat/completions`` answer the next turn, as JSON or,
      when the request asks to stream, as server-sent events.
    - ``requests`` logs every request, answered or not; ``wait_for_requests(n)`` blocks on it.
    - Usage numbers are deterministic: input tokens grow with the request, output tokens with
      the answer, so tests can compare recorded usage with the fake's.

    Used as a context manager it starts on entry and stops on exit. A request with no turn
    queued, no responder and no default gets a 400 error.

    Args:
        responder: Picks the answer to a request when no turn is queued.
    """

    def __init__(self, *, responder: Responder | None = None) -> None:
        super().__init__()
        self._responder = responder
        self._state = _State()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving (if not yet).

        Returns:
            ``base_url``.
        """
        if not self.running:
            self._serve(_handler_for(self), "timestep-fake-openai")
        return self.base_url

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._shutdown()

    @property
    def base_url(self) -> str:
        """The OpenAI base URL: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.root_url}/v1"

    def client(self, *, api_key: str = "test-key", **kwargs: Any) -> AsyncOpenAI:
        """A fresh ``AsyncOpenAI`` pointed at this server.

        Fresh on purpose: the SDK's providers share one module-level HTTP client, whose pooled
        connections break when used from another event loop (one per test, typically).

        Args:
            api_key: The key sent (the fake accepts any).
            **kwargs: More ``AsyncOpenAI`` arguments.

        Returns:
            The client.
        """
        return AsyncOpenAI(base_url=self.base_url, api_key=api_key, **kwargs)

    def provider(self, *, use_responses: bool = True, **client_kwargs: Any) -> OpenAIProvider:
        """An SDK ``OpenAIProvider`` on its own client for this server.

        Args:
            use_responses: Use the Responses API (True) or Chat Completions.
            **client_kwargs: Passed to ``client``.

        Returns:
            The provider.
        """
        return OpenAIProvider(
            openai_client=self.client(**client_kwargs), use_responses=use_responses
        )

    # -- script ------------------------------------------------------------------------------

    def add_turns(self, *turns: Turn) -> None:
        """Queue answers, used in order (before the responder and the default).

        Args:
            *turns: The answers.
        """
        with self._state.lock:
            self._state.turns.extend(turns)

    def set_default(self, turn: Turn | None) -> None:
        """The answer when no turn is queued and there is no responder (e.g. for a schedule
        firing many times).

        Args:
            turn: The answer, or None for none.
        """
        with self._state.lock:
            self._state.default = turn

    def on_request(self, hook: Callable[[RecordedRequest], Any] | None) -> None:
        """Call ``hook(request)`` as each request arrives, before it is answered.

        If the hook returns a true value the request is dropped unanswered, as if the network
        died: ``fake.on_request(lambda r: r.index == 2 and worker.kill())`` kills a worker at
        its third model call, which then never completes.

        Args:
            hook: Called with each request (from the server's thread); None removes it.
        """
        with self._state.lock:
            self._state.hook = hook

    # -- log ---------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests have arrived.

        Args:
            count: How many requests to wait for.
            timeout: Seconds to wait.

        Returns:
            Every request received so far.

        Raises:
            TimeoutError: Fewer than ``count`` arrived in time.
        """
        with self._state.arrived:
            if not self._state.arrived.wait_for(
                lambda: len(self._state.requests) >= count, timeout=timeout
            ):
                raise TimeoutError(
                    f"FakeModelServer got {len(self._state.requests)} requests, "
                    f"expected {count} within {timeout}s"
                )
            return list(self._state.requests)

    # -- answering ---------------------------------------------------------------------------

    def _record(
        self, method: str, path: str, headers: Mapping[str, str], body: Any
    ) -> tuple[RecordedRequest, Callable[[RecordedRequest], Any] | None]:
        with self._state.arrived:
            request = RecordedRequest(
                len(self._state.requests), method, path, headers, body, time.monotonic()
            )
            self._state.requests.append(request)
            self._state.in_flight += 1
            self._state.max_in_flight = max(self._state.max_in_flight, self._state.in_flight)
            self._state.arrived.notify_all()
            return request, self._state.hook

    def _answered(self) -> None:
        with self._state.lock:
            self._state.in_flight -= 1

    @property
    def max_concurrent_requests(self) -> int:
        """The most requests this server was answering at the same moment."""
        with self._state.lock:
            return self._state.max_in_flight

    def _next_turn(self, request: RecordedRequest) -> Turn:
        with self._state.lock:
            if self._state.turns:
                return self._state.turns.popleft()
        if self._responder is not None:
            return self._responder(request)
        with self._state.lock:
            return self._state.default or _NO_TURN


# -- wire formats -----------------------------------------------------------------------------

_WORDS = re.compile(r"\S+\s*")


def _usage_numbers(turn: Turn, request: RecordedRequest) -> dict[str, int]:
    body = request.json if isinstance(request.json, dict) else {}
    prompt = json.dumps(body.get("input", body.get("messages", "")))
    numbers = {
        "input_tokens": max(1, len(prompt) // 4),
        "output_tokens": max(1, len(_WORDS.findall(turn.text)) + 8 * len(turn.calls)),
        "cached_tokens": 0,
        "reasoning_tokens": 0,
    }
    numbers.update(turn.usage or {})
    return numbers


def _response_output(turn: Turn, prefix: str) -> list[dict[str, Any]]:
    output: list[dict[str, Any]] = []
    if turn.text:
        output.append(
            {
                "type": "message",
                "id": f"msg_{prefix}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": turn.text, "annotations": []}],
            }
        )
    for call in turn.calls:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{prefix}_{call.call_id}",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
        )
    output.extend(dict(item) for item in turn.items)
    return output


def _response_body(turn: Turn, request: RecordedRequest) -> dict[str, Any]:
    body = request.json if isinstance(request.json, dict) else {}
    usage = _usage_numbers(turn, request)
    prefix = f"{request.index:04d}"
    return {
        "id": f"resp_{prefix}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": body.get("model", "fake-model"),
        "output": _response_output(turn, prefix),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": usage["input_tokens"],
            "input_tokens_details": {
                "cached_tokens": usage["cached_tokens"],
                "cache_write_tokens": 0,
            },
            "output_tokens": usage["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": usage["reasoning_tokens"]},
            "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        },
    }


def _response_events(
    turn: Turn, request: RecordedRequest
) -> Iterator[tuple[dict[str, Any], float]]:
    """The Responses API's SSE events for a turn, each with the pause to take after it."""
    response = _response_body(turn, request)
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    yield {"type": "response.created", "response": started}, 0.0
    yield {"type": "response.in_progress", "response": started}, 0.0
    for index, item in enumerate(response["output"]):
        if item["type"] == "message":
            yield from _message_events(item, index, turn.chunk_delay)
        elif item["type"] != "function_call":
            yield {"type": "response.output_item.added", "output_index": index, "item": item}, 0.0
            yield {"type": "response.output_item.done", "output_index": index, "item": item}, 0.0
        else:
            added = {**item, "arguments": "", "status": "in_progress"}
            yield {"type": "response.output_item.added", "output_index": index, "item": added}, 0.0
            common = {"item_id": item["id"], "output_index": index}
            yield (
                {
                    "type": "response.function_call_arguments.delta",
                    **common,
                    "delta": item["arguments"],
                },
                0.0,
            )
            yield (
                {
                    "type": "response.function_call_arguments.done",
                    **common,
                    "arguments": item["arguments"],
                },
                0.0,
            )
            yield {"type": "response.output_item.done", "output_index": index, "item": item}, 0.0
    yield {"type": "response.completed", "response": response}, 0.0


def _message_events(
    item: dict[str, Any], index: int, chunk_delay: float
) -> Iterator[tuple[dict[str, Any], float]]:
    full = item["content"][0]["text"]
    part = {"type": "output_text", "text": "", "annotations": []}
    common = {"item_id": item["id"], "output_index": index, "content_index": 0}
    yield (
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**item, "status": "in_progress", "content": []},
        },
        0.0,
    )
    yield {"type": "response.content_part.added", **common, "part": part}, 0.0
    for word in _WORDS.findall(full):
        delta = {"type": "response.output_text.delta", **common, "delta": word, "logprobs": []}
        yield delta, chunk_delay
    yield {"type": "response.output_text.done", **common, "text": full, "logprobs": []}, 0.0
    yield {"type": "response.content_part.done", **common, "part": {**part, "text": full}}, 0.0
    yield {"type": "response.output_item.done", "output_index": index, "item": item}, 0.0


def _chat_tool_calls(turn: Turn) -> list[dict[str, Any]]:
    return [
        {
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in turn.calls
    ]


def _chat_usage(turn: Turn, request: RecordedRequest) -> dict[str, Any]:
    usage = _usage_numbers(turn, request)
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        "prompt_tokens_details": {"cached_tokens": usage["cached_tokens"]},
        "completion_tokens_details": {"reasoning_tokens": usage["reasoning_tokens"]},
    }


def _chat_body(turn: Turn, request: RecordedRequest) -> dict[str, Any]:
    body = request.json if isinstance(request.json, dict) else {}
    message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
    if turn.calls:
        message["tool_calls"] = _chat_tool_calls(turn)
    return {
        "id": f"chatcmpl-{request.index:04d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if turn.calls else "stop",
            }
        ],
        "usage": _chat_usage(turn, request),
    }


def _chat_chunks(turn: Turn, request: RecordedRequest) -> Iterator[tuple[dict[str, Any], float]]:
    body = request.json if isinstance(request.json, dict) else {}
    base = {
        "id": f"chatcmpl-{request.index:04d}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""}), 0.0
    for word in _WORDS.findall(turn.text):
        yield chunk({"content": word}), turn.chunk_delay
    for index, call in enumerate(_chat_tool_calls(turn)):
        yield chunk({"tool_calls": [{"index": index, **call}]}), 0.0
    yield chunk({}, "tool_calls" if turn.calls else "stop"), 0.0
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": _chat_usage(turn, request)}, 0.0


def _error_body(turn: Turn) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}
    return {
        "error": {
            "message": turn.error_message or f"FakeModelServer scripted error {turn.status}",
            "type": kinds.get(turn.status, "server_error"),
            "param": None,
            "code": None,
        }
    }


def _handler_for(fake: FakeModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Small writes go out at once: with Nagle's algorithm a kept-alive connection's next
        # response waited for the client's delayed ACK (~40 ms), a latency no real API adds.
        disable_nagle_algorithm = True
        server_version = "TimestepFakeOpenAI/1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            headers = {key.lower(): value for key, value in self.headers.items()}
            request, hook = fake._record("POST", self.path.split("?")[0], headers, body)
            try:
                self._answer(request, hook)
            finally:
                fake._answered()

        def _answer(
            self, request: RecordedRequest, hook: Callable[[RecordedRequest], Any] | None
        ) -> None:
            if hook is not None and hook(request):
                self.close_connection = True
                return
            if request.path not in ("/v1/responses", "/v1/chat/completions"):
                self._send_json(404, {"error": {"message": f"no route {request.path}"}})
                return
            turn = fake._next_turn(request)
            if turn.delay:
                time.sleep(turn.delay)
            extra = dict(turn.headers or {})
            if turn.status != 200:
                if turn.retry_after is not None:
                    extra["Retry-After"] = f"{turn.retry_after:g}"
                    extra["retry-after-ms"] = str(int(turn.retry_after * 1000))
                self._send_json(turn.status, _error_body(turn), extra)
            elif request.api == "chat":
                if request.streaming:
                    self._send_events(_chat_chunks(turn, request), False, extra, turn)
                else:
                    self._send_json(200, _chat_body(turn, request), extra)
            elif request.streaming:
                self._send_events(_response_events(turn, request), True, extra, turn)
            else:
                self._send_json(200, _response_body(turn, request), extra)

        def _send_json(
            self, status: int, payload: Any, headers: Mapping[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self._write(data)

        def _send_events(
            self,
            events: Iterable[tuple[dict[str, Any], float]],
            named: bool,
            headers: Mapping[str, str],
            turn: Turn,
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            # Paced on a schedule of the stream's own, as a provider's tokens are: a pause
            # slept after each write would drift with this machine's load (the client's own
            # work on a shared CPU delaying each wake-up) and add up over the stream.
            due = time.monotonic()
            for sequence, (event, pause) in enumerate(events):
                if sequence == turn.cut_after_events:
                    # Cut: no terminating chunk, and the socket closes under the client.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if named:
                    event = {**event, "sequence_number": sequence}
                    frame = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                else:
                    frame = f"data: {json.dumps(event)}\n\n"
                if not self._write_chunk(frame.encode()):
                    return
                if pause:
                    due += pause
                    time.sleep(max(0.0, due - time.monotonic()))
            if not named:
                self._write_chunk(b"data: [DONE]\n\n")
            self._write_chunk(b"")

        def _write_chunk(self, data: bytes) -> bool:
            return self._write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        def _write(self, data: bytes) -> bool:
            try:
                self.wfile.write(data)
                self.wfile.flush()
                return True
            except (BrokenPipeError, ConnectionResetError):
                # The client went away (e.g. a worker was killed mid-stream).
                self.close_connection = True
                return False

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
