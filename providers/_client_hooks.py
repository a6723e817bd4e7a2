"""Hooks on a model's HTTP client: the provider's rate-limit headers, the client's retries.

``watch_rate_limits(model)`` adds a response hook to the httpx client under the model's
``AsyncOpenAI`` client (the SDK's Responses and Chat Completions models, and so Ollama's). The
hook does nothing unless a limited provider's durable call is in flight in its context
(``timestep._core.provider_feedback.feedback_sink``, set by the permit path); then it hands
over what each response said of the provider's limits, as it arrives: every attempt the
OpenAI client makes, so a 429 it retries by itself slows every worker at once, and a
streamed response's headers before its first event. ``watch_retries(model)`` adds a request
hook that counts the OpenAI client's own retries against the step under way
(``timestep._core.retries``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from openai import AsyncOpenAI

from timestep._core.provider_feedback import feedback_sink, read_rate_limit_headers
from timestep._core.retries import note_client_retry

__all__ = ["watch_rate_limits", "watch_retries"]


async def _on_response(response: Any) -> None:
    """An httpx response hook (the OpenAI client's httpx, whichever package provides it)."""
    sink = feedback_sink.get()
    if sink is None:
        return
    feedback = read_rate_limit_headers(response.status_code, response.headers, time.time())
    if feedback is not None:
        await sink(feedback)


def watch_rate_limits(model: Any) -> None:
    """Hook ``model``'s HTTP client so the limiter reads its provider's rate-limit headers.

    Idempotent; a model without an ``AsyncOpenAI`` client is left alone (a 429 reaching its
    step is still read from the error).

    Args:
        model: A model, e.g. the SDK's ``OpenAIResponsesModel`` (its ``_client``).
    """
    _hook(model, "response", _on_response)


async def _on_request(request: Any) -> None:
    """An httpx request hook: the OpenAI client numbers its retries of a request in a header."""
    if request.headers.get("x-stainless-retry-count", "0") != "0":
        await note_client_retry()


def watch_retries(model: Any) -> None:
    """Hook ``model``'s HTTP client so a step's timeline counts the client's own retries
    (a 429 or a 5xx it sends again inside one execution of the model step).

    Idempotent; a model without an ``AsyncOpenAI`` client is left alone.

    Args:
        model: A model, e.g. the SDK's ``OpenAIResponsesModel`` (its ``_client``).
    """
    _hook(model, "request", _on_request)


def _hook(model: Any, event: str, hook: Callable[[Any], Awaitable[None]]) -> None:
    """Add ``hook`` to the httpx client under ``model``'s ``AsyncOpenAI`` client, once."""
    client = getattr(model, "_client", None)
    if not isinstance(client, AsyncOpenAI):
        return
    hooks = getattr(getattr(client, "_client", None), "event_hooks", None)
    if not isinstance(hooks, dict) or not isinstance(hooks.get(event), list):
        return
    if hook not in hooks[event]:
        hooks[event].append(hook)  # the client's own list: hooked in place
