"""Timestep settings, read from the environment (``TIMESTEP_*`` plus the providers' usual keys)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]

_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DB_SCHEMES = ("postgresql", "postgres", "sqlite")


class Settings(BaseSettings):
    """Every knob Timestep reads from the environment.

    ``TIMESTEP_*`` variables map to the field of the same name (``TIMESTEP_APP_NAME`` ->
    ``app_name``); provider keys keep the names their own SDKs use (``OPENAI_API_KEY``...).
    """

    model_config = SettingsConfigDict(env_prefix="TIMESTEP_", extra="ignore", populate_by_name=True)

    app_name: str = "timestep"
    """DBOS application name; also names the embedded SQLite file."""

    application_version: str = "timestep-1"
    """Pinned DBOS application version, so pending runs recover across code deploys."""

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PG_CONNECTION_URI", "TIMESTEP_DATABASE_URL"),
    )
    """Explicit database (``PG_CONNECTION_URI`` in the seeds); wins over every fallback."""

    local_postgres_url: str = "postgresql://postgres@localhost:5432/timestep"
    """Postgres tried when nothing else is configured and localhost:5432 answers."""

    probe_local_postgres: bool = True
    """Set to false to go straight to embedded SQLite when nothing is configured."""

    data_dir: Path = Path(".timestep")
    """Where the embedded SQLite database lives."""

    sqlite_polling_interval_sec: float = Field(default=0.05, gt=0, le=0.1)
    """DBOS notification polling on SQLite (no LISTEN/NOTIFY there), so messages are not late."""

    scheduler_polling_interval_sec: float = Field(default=5.0, gt=0)
    """How soon a new or changed schedule is picked up by running workers."""

    executor_id: str | None = None
    """This process's DBOS executor id. Give each worker process sharing a database its own,
    stable across restarts: at launch DBOS recovers the pending runs of its executor id."""

    queue_polling_interval_sec: float = Field(default=0.1, gt=0)
    """How often each process polls a Timestep queue (run queues, provider limits)."""

    provider_limits: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per-provider limits, JSON: ``{"openai": {"requests": 500, "per_seconds": 60}}``."""

    model_max_retries: int = Field(default=3, ge=0, le=20)
    """Client-side retries of transient provider errors (429, 5xx, timeouts), honouring Retry-After."""

    model_timeout_sec: float = Field(default=600.0, gt=0)

    max_state_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    """Largest RunState payload the store accepts."""

    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    ollama_api_key: SecretStr | None = Field(default=None, validation_alias="OLLAMA_API_KEY")
    ollama_base_url: str = Field(
        default="http://localhost:11434", validation_alias="OLLAMA_BASE_URL"
    )
    ollama_cloud_url: str = "https://ollama.com"
    firecrawl_api_key: SecretStr | None = Field(default=None, validation_alias="FIRECRAWL_API_KEY")
    firecrawl_base_url: str = Field(
        default="https://api.firecrawl.dev", validation_alias="FIRECRAWL_API_URL"
    )
    api_token: SecretStr | None = None
    """Bearer token the HTTP API requires (``TIMESTEP_API_TOKEN``)."""

    @field_validator("app_name")
    @classmethod
    def _check_app_name(cls, value: str) -> str:
        if not _APP_NAME.match(value):
            raise ValueError(
                "must be 1-63 characters of lowercase letters, digits, '-' or '_', "
                f"starting with a letter or digit (got {value!r})"
            )
        return value

    @field_validator("database_url", "local_postgres_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
        if scheme not in _DB_SCHEMES:
            raise ValueError(f"must be a postgresql:// or sqlite:// URL (got {_redact(value)!r})")
        return value


def _redact(url: str) -> str:
    """Hide the password of a database URL, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests call ``get_settings.cache_clear()``."""
    return Settings()
