"""The HTTP API's settings: ``TIMESTEP_API_*`` environment variables, or arguments to ``serve``.

Kept apart from the process's settings (``timestep._core.settings``, read once per process) so that a test or an embedding
application can build several apps with different tokens in one process.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MIN_TOKEN_LENGTH", "ServerSettings", "is_loopback"]

MIN_TOKEN_LENGTH = 32
"""The shortest ``TIMESTEP_API_TOKEN`` the server accepts (``openssl rand -hex 32`` gives 64)."""


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
    """The bearer token (``TIMESTEP_API_TOKEN``); at least ``MIN_TOKEN_LENGTH`` characters."""

    allow_short_token: bool = Field(
        default=False, validation_alias="TIMESTEP_API_ALLOW_SHORT_TOKEN"
    )
    """Accept a token shorter than ``MIN_TOKEN_LENGTH`` characters: for local development only
    (``timestep serve --allow-short-token``)."""

    auth: bool = Field(default=True, validation_alias="TIMESTEP_API_AUTH")
    """Require the token. False only for local development, on localhost."""

    host: str = Field(default="127.0.0.1", validation_alias="TIMESTEP_API_HOST")
    port: int = Field(default=8000, ge=0, le=65535, validation_alias="TIMESTEP_API_PORT")

    allow_agent_refs: bool = Field(
        default=False,
        validation_alias="TIMESTEP_API_ALLOW_AGENT_REFS",
    )
    """Let ``POST /runs`` (and ``POST /schedules``) name an agent as ``module:attr``, imported
    on first use, from modules under ``agent_ref_prefixes`` only. Off by default: only the
    agents registered at startup (``--agents``) are served."""

    agent_ref_prefixes: str = Field(
        default="",
        validation_alias="TIMESTEP_API_AGENT_REF_PREFIXES",
    )
    """Comma-separated module prefixes an agent reference may import from (``myapp.agents``
    allows ``myapp.agents`` and ``myapp.agents.*``, not ``myapp.agentsx``). Required when
    ``allow_agent_refs`` is on."""

    @property
    def ref_prefixes(self) -> tuple[str, ...]:
        """``agent_ref_prefixes`` as a tuple of module names."""
        return tuple(p.strip() for p in self.agent_ref_prefixes.split(",") if p.strip())

    def ref_allowed(self, module_name: str) -> bool:
        """Whether an agent reference may import ``module_name``."""
        return self.allow_agent_refs and any(
            module_name == prefix or module_name.startswith(prefix + ".")
            for prefix in self.ref_prefixes
        )

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
