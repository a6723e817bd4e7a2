"""``serve``: the HTTP API under uvicorn, as ``timestep serve`` runs it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import uvicorn
from agents import Agent

from timestep._client.agents import register_agent, registered_agents
from timestep.errors import ConfigurationError

from ._app import create_app
from ._settings import ServerSettings, is_loopback

__all__ = [
    "load_agent_modules",
    "serve",
]


def load_agent_modules(modules: Sequence[str]) -> list[str]:
    """Import ``modules`` and register every module-level ``Agent`` they define, with its
    ``module:attr`` reference. Done before DBOS launches, so the server can recover (and keep
    executing) pending runs of these agents. Returns the registered agents' names."""
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigurationError(f"cannot import agent module {module_name!r}: {exc}") from exc
        for attr, value in list(vars(module).items()):
            if isinstance(value, Agent) and not attr.startswith("_"):
                register_agent(value, ref=f"{module_name}:{attr}")
    return sorted(registered_agents())


def serve(
    host: str | None = None,
    port: int | None = None,
    *,
    agents: Sequence[str] = (),
    auth: bool | None = None,
    allow_short_token: bool | None = None,
    database_url: str | None = None,
    settings: ServerSettings | None = None,
    log_level: str = "info",
) -> None:
    """Serve the HTTP API until interrupted. Arguments left None come from ``settings``
    (default: the ``TIMESTEP_API_*`` environment).

    ``auth=False`` is refused unless ``host`` is a loopback address: an unauthenticated API
    would let anyone on the network start runs and answer approvals.
    """

    updates = {"host": host, "port": port, "auth": auth, "allow_short_token": allow_short_token}
    settings = (settings or ServerSettings()).model_copy(
        update={k: v for k, v in updates.items() if v is not None}
    )
    if not settings.auth and not is_loopback(settings.host):
        raise ConfigurationError(
            f"--no-auth is only allowed when binding to localhost (127.0.0.1, ::1 or "
            f"localhost), not {settings.host!r}: set TIMESTEP_API_TOKEN to serve on the network"
        )
    names = load_agent_modules(agents)
    app = create_app(settings, database_url=database_url)
    mode = "bearer token" if settings.auth else "OFF (loopback clients only)"
    print(
        f"timestep API: auth {mode}; agents: {', '.join(names) or 'none'}",
        file=sys.stderr,
        flush=True,
    )
    # On SIGTERM/SIGINT uvicorn stops (the app's lifespan shuts DBOS down), then re-raises
    # the signal so a supervisor sees how the process ended.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        # Event streams of waiting runs never end by themselves; do not wait on them forever.
        timeout_graceful_shutdown=5,
    )
