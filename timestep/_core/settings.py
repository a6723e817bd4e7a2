"""Timestep settings: ``TIMESTEP_*`` plus the providers' usual keys, from the environment or,
below it, from the ``env`` section of ``dbos-config.yaml``::

    env:
      TIMESTEP_EXECUTOR_ID: worker-1
      TIMESTEP_PROVIDER_LIMITS:
        openai: {requests: 500, per_seconds: 60, concurrency: 16}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from timestep.errors import ConfigurationError

from .retention_policy import RetentionPolicy, parse_retention

__all__ = ["Settings", "dbos_config_file", "load_settings", "redact_url"]

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
    """DBOS notification polling on SQLite (no LISTEN/NOTIFY there), so messages are not late;
    also how often a stream reader with no notifications to wake it polls (on SQLite, or in a
    process that reads through DBOS's client rather than launching DBOS)."""

    records_flush_interval_sec: float = Field(default=0.05, ge=0)
    """How long the background writer gathers finished runs' usage and tool-call rows into
    one transaction; other processes see a run's rows about this much later."""

    scheduler_polling_interval_sec: float = Field(default=5.0, gt=0)
    """How soon a new or changed schedule is picked up by running workers."""

    executor_id: str | None = None
    """This process's DBOS executor id. Give each worker process sharing a database its own,
    stable across restarts: at launch DBOS recovers the pending runs of its executor id."""

    agent_modules: str | None = None
    """Comma-separated modules imported before launch, so the agents they register can have
    their pending runs recovered (``TIMESTEP_AGENT_MODULES``)."""

    queue_polling_interval_sec: float = Field(default=0.1, gt=0)
    """How often each process polls a Timestep queue (run queues, provider limits)."""

    provider_limits: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per-provider limits, JSON: ``{"openai": {"requests": 500, "per_seconds": 60}}``."""

    budgets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Budgets written at launch, JSON by scope:
    ``{"tag:tenant-a": {"max_cost_usd": 5, "per": "day"}}`` (see ``set_budget``)."""

    enforce_budgets: bool = False
    """Check budgets before every durable model call even if this process set none and the
    database had none at launch (a budget set later from another process)."""

    model_max_retries: int | None = Field(default=None, ge=0, le=20)
    """Client-side retries of transient provider errors (429, 5xx, timeouts), honouring
    Retry-After; unset, the OpenAI client's default (2), as under the SDK."""

    model_timeout_sec: float | None = Field(default=None, gt=0)
    """The model client's timeout; unset, the OpenAI client's default (600 s)."""

    db_connect_timeout_sec: float = Field(default=10.0, gt=0, le=3600)
    """How long any database connection may take to open (``TIMESTEP_DB_CONNECT_TIMEOUT_SEC``):
    psycopg's ``connect_timeout`` on every Postgres connection Timestep and DBOS open (whole
    seconds, at least 2, psycopg's minimum), the busy timeout on SQLite. A database that
    accepts connections but never answers fails within it instead of hanging."""

    max_state_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    """Largest RunState payload the store accepts (and a run may start from)."""

    max_input_bytes: int = Field(default=1024 * 1024, gt=0)
    """Largest run input (its compact JSON, UTF-8) a run may start with, from ``run_agent``
    and the HTTP API (``TIMESTEP_MAX_INPUT_BYTES``)."""

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

    retention: str | None = None
    """How long ended runs and idle sessions are kept, e.g. ``finished=30d,failed=90d``
    (``timestep._core.retention``); unset, nothing is deleted by itself."""

    retention_schedule: str = "0 0 * * * *"
    """When the retention pass runs (DBOS cron, six fields, seconds first): hourly."""

    retention_batch_size: int = Field(default=500, ge=1, le=10_000)
    """Most runs one retention transaction deletes."""

    dbos_log_level: str | None = Field(
        default=None, pattern="^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$"
    )
    """DBOS's log level (``configure_dbos(log_level=...)`` wins); unset, DBOS's default (INFO).
    The ``timestep`` command sets WARNING unless told otherwise or given ``--debug``."""

    log_format: str = Field(default="text", pattern="^(text|json)$")
    """``json`` writes Timestep's and DBOS's log lines as JSON, with the workflow id and step."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The real environment wins over dbos-config.yaml's env section.
        return (init_settings, env_settings, _DbosConfigEnv(settings_cls), file_secret_settings)

    @field_validator("app_name")
    @classmethod
    def _check_app_name(cls, value: str) -> str:
        if not _APP_NAME.match(value):
            raise ValueError(
                "must be 1-63 characters of lowercase letters, digits, '-' or '_', "
                f"starting with a letter or digit (got {value!r})"
            )
        return value

    @field_validator("retention")
    @classmethod
    def _check_retention(cls, value: str | None) -> str | None:
        if not value:
            return None
        parse_retention(value)  # ValueError names the bad part
        return value

    @property
    def retention_policy(self) -> RetentionPolicy | None:
        """``retention`` parsed; None when unset."""
        return parse_retention(self.retention) if self.retention else None

    @field_validator("database_url", "local_postgres_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
        if scheme not in _DB_SCHEMES:
            raise ValueError(
                f"must be a postgresql:// or sqlite:// URL (got {redact_url(value)!r})"
            )
        return value


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def dbos_config_file() -> dict[str, Any]:
    """``dbos-config.yaml`` (or ``DBOS_CONFIG_FILE``) as a dict, ``${VAR}`` expanded as DBOS
    does; empty if there is no such file."""
    path = Path(os.environ.get("DBOS_CONFIG_FILE", "dbos-config.yaml"))
    if not path.is_file():
        return {}
    text = _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), path.read_text())
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must hold a mapping, not {type(data).__name__}")
    return data


class _DbosConfigEnv(EnvSettingsSource):
    """The ``env`` section of ``dbos-config.yaml``, read like environment variables; a
    mapping or list value (a provider limits table) counts as its JSON."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        section = dbos_config_file().get("env") or {}
        if not isinstance(section, dict):
            return {}
        values = {
            str(key): value if isinstance(value, str) else json.dumps(value)
            for key, value in section.items()
            if value is not None
        }
        return parse_env_vars(
            values, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def redact_url(url: str) -> str:
    """Hide the password of a database URL, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings now; an invalid one is a ``ConfigurationError`` that names it.

    The process reads them once (``timestep._core.process.get_settings``)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid Timestep settings: {problems}") from None
