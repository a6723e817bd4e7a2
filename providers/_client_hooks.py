"""Read a provider's rate-limit headers off every response of a model's HTTP client.

``watch_rate_limits(model)`` adds a response hook to the httpx client under the model's
``AsyncOpenAI`` client (the SDK's Responses and Chat Completions models, and so Ollama's). The
hook does nothing unless a limited provider's durable call is in flight in its context
(``timestep._core.provider_feedback.feedback_sink``, set by the permit path); then it hands
over what each response said of the provider's limits, as it arrives: every attempt the
OpenAI client makes, so a 429 it retries by itself slows every worker at once, and a
streamed response's headers before its first event.
"""

from __future__ import annotations

import time
from typing import Any

from openai import AsyncOpenAI

from timestep._core.provider_feedback import feedback_sink, read_rate_limit_headers

__all__ = ["watch_rate_limits"]


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
    client = getattr(model, "_client", None)
    if not isinstance(client, AsyncOpenAI):
        return
    hooks = getattr(getattr(client, "_client", None), "event_hooks", None)
    if not isinstance(hooks, dict) or not isinstance(hooks.get("response"), list):
        return
    if _on_response not in hooks["response"]:
        hooks["response"].append(_on_response)  # the client's own list: hooked in place
