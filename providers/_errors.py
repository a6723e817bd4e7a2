"""Errors raised by Timestep's model providers."""

from __future__ import annotations

from agents.exceptions import AgentsException

from timestep.errors import TimestepError

__all__ = ["ProviderUnavailableError"]


class ProviderUnavailableError(AgentsException, TimestepError):
    """A model server cannot be reached at all, e.g. local Ollama is not running.

    It is an ``agents.exceptions.AgentsException`` so it reaches callers of ``Runner.run`` like
    the SDK's own errors, and a ``TimestepError`` so ``except TimestepError`` catches it too. The
    underlying ``openai.APIConnectionError`` is kept as ``__cause__``.
    """

    def __init__(self, message: str, *, provider: str, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        """Which provider failed, e.g. ``"ollama"``."""
        self.url = url
        """The base URL that could not be reached."""
