"""The secrets Timestep is configured with, and their removal from anything it stores or shows.

Provider keys and the API token must never reach the database, a log line or an API answer,
whatever a run's context, a tool's arguments or an error message holds.
"""

from __future__ import annotations

from .process import get_settings

__all__ = ["REDACTED", "configured_secrets", "redact"]

REDACTED = "[redacted]"
_MIN_SECRET_CHARS = 8  # shorter values would redact ordinary words


def configured_secrets() -> list[str]:
    """The configured keys and tokens (values of at least eight characters)."""
    settings = get_settings()
    values = (
        secret.get_secret_value() if secret else ""
        for secret in (
            settings.openai_api_key,
            settings.ollama_api_key,
            settings.firecrawl_api_key,
            settings.api_token,
        )
    )
    return [value for value in values if len(value) >= _MIN_SECRET_CHARS]


def redact(text: str) -> str:
    """``text`` with every configured secret replaced by ``[redacted]``."""
    for secret in configured_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
