"""What a provider limit or a run queue is: DBOS queue specs, declared before or after launch.

The process keeps them in its ``LimitRegistry``; the launch registers the declared queues with
DBOS (``runtime.ensure_dbos_launched``), and the permit workflow enforces a provider's limits
(``workflows._provider_permit``). ``timestep.limit_provider`` and ``timestep.declare_queue``
are the public way in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from timestep.errors import ConfigurationError

__all__ = [
    "LIMIT_OPTIONS",
    "LimitRegistry",
    "ProviderLimit",
    "QueueSpec",
    "provider_limit_queues",
    "provider_prefix",
    "queue_spec",
]

QueueSpec = dict[str, Any]
"""Keyword arguments of ``DBOS.register_queue`` (concurrency, worker concurrency, limiter)."""

LIMIT_OPTIONS = frozenset(
    {"requests", "tokens", "output_tokens", "per_seconds", "concurrency", "worker_concurrency"}
)
DEFAULT_OUTPUT_TOKENS = 1024
"""A call's output estimate, for a token limit, when its model settings set no ``max_tokens``."""


@dataclass(frozen=True)
class ProviderLimit:
    """A provider's limits and the DBOS queues that hold its permits (``limit_provider``)."""

    prefix: str
    """The model-name prefix of the provider (``"openai"`` for bare names)."""
    queue_name: str
    """Permits for the calls in flight (``concurrency``, ``worker_concurrency``)."""
    rate_queue_name: str
    """Permits for the call rate (``requests`` per ``per_seconds``)."""
    requests: int | None = None
    """Calls allowed per ``per_seconds``."""
    per_seconds: float | None = None
    """The window of ``requests`` and ``tokens``."""
    concurrency: int | None = None
    """Calls in flight at once, across all processes."""
    worker_concurrency: int | None = None
    """Calls in flight at once, per process."""
    tokens: int | None = None
    """Input plus output tokens per ``per_seconds`` (``timestep._core.ledger``)."""
    output_tokens: int = DEFAULT_OUTPUT_TOKENS
    """The output estimate of a call whose settings give no ``max_tokens``."""

    @property
    def limits_rate(self) -> bool:
        """Whether it limits the call rate (``requests`` per ``per_seconds``)."""
        return self.requests is not None

    @property
    def limits_tokens(self) -> bool:
        """Whether it limits tokens per ``per_seconds``."""
        return self.tokens is not None

    @property
    def limits_concurrency(self) -> bool:
        """Whether it limits the calls in flight (overall or per process)."""
        return self.concurrency is not None or self.worker_concurrency is not None


def provider_prefix(model_name: str | None) -> str:
    """The routing prefix of a model name: ``"openai"`` for bare names, as MultiModelProvider."""
    if not model_name:
        return "openai"
    prefix, separator, _ = model_name.partition("/")
    return prefix if separator else "openai"


def queue_spec(
    name: str,
    requests: int | None,
    per_seconds: float | None,
    concurrency: int | None,
    worker_concurrency: int | None,
) -> QueueSpec:
    """A DBOS queue's registration options, validated (``ConfigurationError`` says why not)."""
    if (requests is None) != (per_seconds is None):
        raise ConfigurationError(f"queue {name!r}: give both requests and per_seconds, or neither")
    for label, value in (
        ("requests", requests),
        ("per_seconds", per_seconds),
        ("concurrency", concurrency),
        ("worker_concurrency", worker_concurrency),
    ):
        if value is not None and value <= 0:
            raise ConfigurationError(f"queue {name!r}: {label} must be positive, got {value}")
    spec: QueueSpec = {"global_concurrency": concurrency}
    if worker_concurrency is not None:
        spec["worker_concurrency"] = worker_concurrency
    if requests is not None and per_seconds is not None:
        spec["limiter"] = {"limit": requests, "period": per_seconds}
    return spec


def provider_limit_queues(
    prefix: str,
    *,
    requests: int | None = None,
    per_seconds: float | None = None,
    concurrency: int | None = None,
    worker_concurrency: int | None = None,
    tokens: int | None = None,
    output_tokens: int | None = None,
) -> tuple[ProviderLimit, dict[str, QueueSpec]]:
    """A provider's limit and the queues that hold its permits.

    The rate has a queue of its own, ``timestep.provider.<prefix>.rate``, whose global
    concurrency is ``requests``: a permit holds its slot until ``per_seconds`` after its call
    ended (see ``workflows._provider_permit``), which bounds every window exactly. DBOS's own
    limiter counts dequeues instead, which the requests trail, so it is not used here.
    """
    if not prefix or "/" in prefix:
        raise ConfigurationError(f"invalid provider prefix {prefix!r} (e.g. 'openai', 'ollama')")
    queue_name = f"timestep.provider.{prefix}"
    if tokens is not None:
        if per_seconds is None:
            raise ConfigurationError(f"provider {prefix!r}: give per_seconds with tokens")
        for label, value in (("tokens", tokens), ("output_tokens", output_tokens)):
            if value is not None and value <= 0:
                raise ConfigurationError(f"provider {prefix!r}: {label} must be positive")
    spec = queue_spec(
        queue_name,
        requests,
        per_seconds if requests is not None else None,
        concurrency,
        worker_concurrency,
    )
    spec.pop("limiter", None)
    limit = ProviderLimit(
        prefix=prefix,
        queue_name=queue_name,
        rate_queue_name=f"{queue_name}.rate",
        requests=requests,
        per_seconds=per_seconds,
        concurrency=concurrency,
        worker_concurrency=worker_concurrency,
        tokens=tokens,
        output_tokens=output_tokens or DEFAULT_OUTPUT_TOKENS,
    )
    queues: dict[str, QueueSpec] = {}
    if limit.limits_rate:
        queues[limit.rate_queue_name] = {"global_concurrency": requests}
    if limit.limits_concurrency:
        queues[queue_name] = spec
    return limit, queues


class LimitRegistry:
    """The process's provider limits and declared DBOS queues."""

    def __init__(self) -> None:
        self._limits: dict[str, ProviderLimit] = {}
        self._queues: dict[str, QueueSpec] = {}
        self._lock = threading.Lock()

    def provider_limit(self, prefix: str) -> ProviderLimit | None:
        """A dict lookup: this runs before every durable model call."""
        return self._limits.get(prefix)

    def set_provider_limit(self, limit: ProviderLimit, queues: dict[str, QueueSpec]) -> None:
        with self._lock:
            self._limits[limit.prefix] = limit
            self._queues.update(queues)

    def declare_queue(self, name: str, spec: QueueSpec) -> None:
        with self._lock:
            self._queues[name] = spec

    def clear(self) -> None:
        with self._lock:
            self._limits.clear()
            self._queues.clear()

    def queues(self) -> dict[str, QueueSpec]:
        with self._lock:
            return dict(self._queues)
