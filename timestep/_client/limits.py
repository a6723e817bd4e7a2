"""Rate limits per LLM provider, and run queues, on DBOS queues.

A limited provider's durable model calls take permits from DBOS queues, so the limits hold
across every process sharing the database (``workflows._provider_permit`` says how the rate
stays exact). Limits come from code (``limit_provider``) or settings
(``TIMESTEP_PROVIDER_LIMITS``, from the environment or the ``env`` section of
``dbos-config.yaml``). Providers without a limit pay nothing: their model calls are plain steps.
"""

from __future__ import annotations

from timestep._core.limits import ProviderLimit, provider_limit_queues, queue_spec
from timestep._core.process import process_state
from timestep._core.runtime import register_queues

__all__ = ["ProviderLimit", "declare_queue", "limit_provider"]


def limit_provider(
    prefix: str,
    *,
    requests: int | None = None,
    per_seconds: float | None = None,
    concurrency: int | None = None,
    worker_concurrency: int | None = None,
    tokens: int | None = None,
    output_tokens: int | None = None,
) -> ProviderLimit:
    """Limit durable model calls to the provider of ``prefix`` (``"openai"`` for bare names).

    ``requests`` per ``per_seconds`` bounds the calls in any window of ``per_seconds``;
    ``concurrency`` the calls in flight across all processes, ``worker_concurrency`` per
    process. ``tokens`` per ``per_seconds`` bounds the input plus output tokens of the calls
    sent in any window of ``per_seconds``: each call reserves its estimate before it is sent
    (``estimate_call_tokens``: the request's size, plus its ``max_tokens`` or else
    ``output_tokens``, default 1024) and settles to its real usage when it returns. Call it at
    import time, like agent registration; calling it again replaces the limit.

    Whatever the numbers (even none: ``limit_provider("openai")``), the calls also follow what
    the provider says of its own limits, in every worker sharing the database: after a
    response with ``x-ratelimit-remaining-requests`` / ``x-ratelimit-remaining-tokens`` and
    their ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens`` (``"6m0s"``, ``"1s"``,
    ``"20ms"``), no more calls are admitted until the reset than the requests left, nor more
    tokens (estimates, real usage once settled) than the tokens left; after a 429, none
    before its ``Retry-After`` (else the reset of what ran out), including a 429 the OpenAI
    client retried by itself. The headers are read off the model's ``AsyncOpenAI`` client
    (``timestep.providers.watch_rate_limits``); with another client, only a 429 reaching the
    model step is seen. Each call of a limited provider is admitted in the ledger (one short
    transaction before the call, one after).

    Args:
        prefix: The model-name prefix of the provider (``"ollama"`` for ``"ollama/llama3.2"``).
        requests: Calls allowed per ``per_seconds``.
        per_seconds: The window of ``requests`` and ``tokens``.
        concurrency: Calls in flight at once, across all processes.
        worker_concurrency: Calls in flight at once, per process.
        tokens: Input plus output tokens allowed per ``per_seconds``.
        output_tokens: The output estimate of a call whose settings give no ``max_tokens``.

    Returns:
        The limit as set.

    Raises:
        ConfigurationError: The prefix is invalid, a number is not positive, or only one of
            ``requests`` and ``per_seconds`` is given (or ``tokens`` without ``per_seconds``).
    """
    limit, queues = provider_limit_queues(
        prefix,
        requests=requests,
        per_seconds=per_seconds,
        concurrency=concurrency,
        worker_concurrency=worker_concurrency,
        tokens=tokens,
        output_tokens=output_tokens,
    )
    process = process_state()
    process.limits.set_provider_limit(limit, queues)
    if process.launched:
        register_queues(queues)
    return limit


def declare_queue(
    name: str,
    *,
    requests: int | None = None,
    per_seconds: float | None = None,
    concurrency: int | None = None,
    worker_concurrency: int | None = None,
) -> None:
    """Declare a DBOS queue (for ``start_agent_run(..., queue=name)``).

    It is registered with DBOS at launch, or at once if DBOS is already launched. Its
    ``requests``/``per_seconds`` is DBOS's own limiter, which counts run starts.

    Args:
        name: The queue's name.
        requests: Run starts allowed per ``per_seconds``.
        per_seconds: The window of ``requests``.
        concurrency: Runs executing at once, across all processes.
        worker_concurrency: Runs executing at once, per process.

    Raises:
        ConfigurationError: A number is not positive, or only one of ``requests`` and
            ``per_seconds`` is given.
    """
    spec = queue_spec(name, requests, per_seconds, concurrency, worker_concurrency)
    process = process_state()
    process.limits.declare_queue(name, spec)
    if process.launched:
        register_queues({name: spec})
