"""What a provider says about its own rate limits, read from the headers of its responses.

OpenAI (and providers copying its API) answers every call with::

    x-ratelimit-remaining-requests: 59        x-ratelimit-reset-requests: 1s
    x-ratelimit-remaining-tokens: 149984      x-ratelimit-reset-tokens: 6m0s

and a 429 with ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``. The durations
are Go's format (``"6m0s"``, ``"1s"``, ``"20ms"``, ``"1h2m3.5s"``); a bare number is seconds.
``read_rate_limit_headers`` turns them into a ``RateLimitFeedback`` of epoch seconds, which
the ledger stores for every worker (``timestep._core.ledger.record_feedback``) and admissions
obey (``ledger.admit``).

``feedback_sink`` is how a response reaches the ledger: the permit path
(``workflows._provider_permit``) sets it around a limited provider's call, and the HTTP client's
response hook (``providers.watch_rate_limits``) hands it what each response said, including
the 429s the OpenAI client retries by itself.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "FeedbackSink",
    "MAX_BLOCK_SECONDS",
    "RateLimitFeedback",
    "feedback_sink",
    "parse_duration",
    "read_rate_limit_headers",
    "retry_after_seconds",
]

MAX_BLOCK_SECONDS = 600.0
"""The longest wait a header can impose (a malformed or hostile value is capped)."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS = MappingProxyType(
    {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
)


@dataclass(frozen=True)
class RateLimitFeedback:
    """One response's word on the provider's limits (epoch seconds; ``None``: not said)."""

    observed_at: float
    """When the response arrived."""
    blocked_until: float | None = None
    """A 429: no call before this (its Retry-After, else the reset of what ran out)."""
    remaining_requests: int | None = None
    requests_reset_at: float | None = None
    remaining_tokens: int | None = None
    tokens_reset_at: float | None = None


FeedbackSink = Callable[[RateLimitFeedback], Awaitable[None]]
"""Records a response's feedback for the provider of the call in flight."""

feedback_sink: ContextVar[FeedbackSink | None] = ContextVar(
    "timestep_rate_limit_feedback", default=None
)


def parse_duration(value: str | None) -> float | None:
    """Seconds in an OpenAI reset header: ``"6m0s"`` -> 360.0, ``"20ms"`` -> 0.02, ``"1.5"``
    -> 1.5; ``None`` when it is none of these."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            return None
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """A 429's ``retry-after-ms``, else ``Retry-After`` (seconds or an HTTP date), in seconds."""
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def read_rate_limit_headers(
    status: int, headers: Mapping[str, str], now: float
) -> RateLimitFeedback | None:
    """What a response with ``status`` and ``headers`` (case-insensitive, like httpx's) says
    about the provider's limits at ``now``; ``None`` when it says nothing."""
    remaining_requests = _count(headers.get("x-ratelimit-remaining-requests"))
    remaining_tokens = _count(headers.get("x-ratelimit-remaining-tokens"))
    reset_requests = _capped(parse_duration(headers.get("x-ratelimit-reset-requests")))
    reset_tokens = _capped(parse_duration(headers.get("x-ratelimit-reset-tokens")))
    blocked: float | None = None
    if status == 429:
        wait = _capped(retry_after_seconds(headers, now))
        if wait is None:  # no Retry-After: wait for what ran out, else for every reset given
            exhausted = [
                reset
                for remaining, reset in (
                    (remaining_requests, reset_requests),
                    (remaining_tokens, reset_tokens),
                )
                if remaining == 0 and reset is not None
            ]
            given = [r for r in (reset_requests, reset_tokens) if r is not None]
            wait = max(exhausted or given, default=None)
        blocked = now + wait if wait else None
    if blocked is None and remaining_requests is None and remaining_tokens is None:
        return None
    return RateLimitFeedback(
        observed_at=now,
        blocked_until=blocked,
        remaining_requests=remaining_requests,
        requests_reset_at=now + reset_requests
        if remaining_requests is not None and reset_requests is not None
        else None,
        remaining_tokens=remaining_tokens,
        tokens_reset_at=now + reset_tokens
        if remaining_tokens is not None and reset_tokens is not None
        else None,
    )


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _count(value: str | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _capped(seconds: float | None) -> float | None:
    return min(seconds, MAX_BLOCK_SECONDS) if seconds is not None else None
