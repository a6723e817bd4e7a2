"""Timestep's HTTP API (FastAPI): start runs, follow their events, answer approvals.

>>> from timestep.server import create_app, serve
>>> app = create_app()          # an ASGI app; needs TIMESTEP_API_TOKEN  # doctest: +SKIP
>>> serve(port=8000, agents=["myapp.agents"])                          # doctest: +SKIP

``timestep serve`` runs ``serve``. The published OpenAPI spec is at ``/openapi.json``.
"""

from ._app import create_app
from ._serve import load_agent_modules, serve
from ._settings import ServerSettings

__all__ = ["ServerSettings", "create_app", "load_agent_modules", "serve"]
