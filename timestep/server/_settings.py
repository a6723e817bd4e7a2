"""The HTTP API's settings: ``TIMESTEP_API_*`` environment variables, or arguments to ``serve``.

Kept apart from the process's settings (``timestep._core.settings``, read once per process) so that a test or an embedding
application can build several apps with different tokens in one process.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServerSettings", "is_loopback"]


class ServerSettings(BaseSettings):
    """How the HTTP API authenticates and where ``serve`` binds.

    ``TIMESTEP_API_TOKEN`` is the bearer token every route but ``/healthz`` requires. Turning
    auth off (``TIMESTEP_API_AUTH=false`` or ``timestep serve --no-auth``) is allowed only when
    binding to a loopback address, and even then the app answers loopback clients only.
    """

    # Fields with an alias read only that variable (never bare HOST or PORT, which shells and
    # platforms set for other purposes); populate_by_name lets code pass ``host=...``.
    model_config = SettingsConfigDict(env_prefix="TIMESTEP_", extra="ignore", populate_by_name=True)

    api_token: SecretStr | None = None
    """The bearer token (``TIMESTEP_API_TOKEN``)."""

    auth: bool = Field(default=True, validation_alias="TIMESTEP_API_AUTH")
    """Require the token. False only for local development, on localhost."""

    host: str = Field(default="127.0.0.1", validation_alias="TIMESTEP_API_HOST")
    port: int = Field(default=8000, ge=0, le=65535, validation_alias="TIMESTEP_API_PORT")

    allow_agent_refs: bool = Field(
        default=True,
        validation_alias="TIMESTEP_API_ALLOW_AGENT_REFS",
    )
    """Let ``POST /runs`` name an agent as ``module:attr`` (imported on first use). Set to false
    to serve only the agents registered at startup (``--agents``)."""

    heartbeat_sec: float = Field(
        default=15.0,
        gt=0,
        validation_alias="TIMESTEP_API_HEARTBEAT_SEC",
    )
    """How often an idle event stream sends a comment, so proxies keep the connection open."""

    request_timeout_sec: float = Field(
        default=30.0,
        gt=0,
        validation_alias="TIMESTEP_API_REQUEST_TIMEOUT_SEC",
    )
    """The longest a request may wait before its answer starts; past it the answer is 503
    (the database is not answering: DBOS waits for a lost database instead of failing)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts local connections."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
