"""The secrets Timestep is configured with, and their removal from anything it stores or shows.

Provider keys and the API token must never reach the database, a log line or an API answer,
whatever a run's context, a tool's arguments or an error message holds. ``redact`` removes the
configured values (states are cleaned with it); ``scrub`` also removes credential-shaped text
the configured list cannot know (a bearer token, an ``sk-`` key), for errors and log lines.
"""

from __future__ import annotations

import logging
import re

from .process import get_settings

__all__ = [
    "REDACTED",
    "LOGGERS_REDACTED",
    "configured_secrets",
    "install_log_redaction",
    "redact",
    "scrub",
]

REDACTED = "[redacted]"
_MIN_SECRET_CHARS = 8  # shorter values would redact ordinary words
_CREDENTIAL = re.compile(r"(?i)(bearer\s+)[^\s'\",]+|\bsk-[A-Za-z0-9_\-]{12,}")
LOGGERS_REDACTED = ("dbos", "timestep", "openai", "openai.agents", "httpx", "uvicorn.error")
"""The loggers whose records are scrubbed: those that may print a provider's error."""


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


def scrub(text: str) -> str:
    """``redact``, and credential-shaped strings (bearer tokens, ``sk-`` keys) removed too."""
    return _CREDENTIAL.sub(lambda m: f"{m.group(1) or ''}{REDACTED}", redact(text))


class _ScrubbingFilter(logging.Filter):
    """Rewrites a record's message and traceback text without secrets (it never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = _ScrubbingFilter()


def install_log_redaction() -> None:
    """Scrub the records of ``LOGGERS_REDACTED`` (idempotent: one filter per logger)."""
    for name in LOGGERS_REDACTED:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
