"""Bearer-token auth for every route but ``/healthz``.

The token is compared in constant time. With auth turned off (local development), the app
still refuses clients that are not on the loopback interface: turning auth off must never
expose runs and approvals to the network, even if the app is mounted behind another server.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ._settings import ServerSettings, is_loopback

__all__ = ["bearer_scheme", "require_loopback_client", "require_token"]

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="The value of TIMESTEP_API_TOKEN, as 'Authorization: Bearer <token>'.",
)

_CHALLENGE = (("WWW-Authenticate", "Bearer"),)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> None:
    """FastAPI dependency: 401 unless the request carries the configured bearer token.

    Declared through ``Security`` so the published OpenAPI spec names the scheme."""
    settings: ServerSettings = request.app.state.settings
    if not settings.auth:
        require_loopback_client(request)
        return
    if credentials is None:
        header = request.headers.get("authorization")
        problem = (
            "missing bearer token: send 'Authorization: Bearer <TIMESTEP_API_TOKEN>'"
            if not header
            else "malformed Authorization header: expected 'Bearer <token>'"
        )
        raise HTTPException(401, problem, headers=dict(_CHALLENGE))
    expected = settings.api_token.get_secret_value() if settings.api_token else ""
    given = credentials.credentials
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "invalid bearer token", headers=dict(_CHALLENGE))


def require_loopback_client(request: Request) -> None:
    """403 unless the client is on the loopback interface: the rule when auth is off."""
    client = request.client.host if request.client else ""
    if not is_loopback(client):
        raise HTTPException(
            403,
            f"authentication is off (--no-auth), so only loopback clients are served, "
            f"not {client or 'an unknown client'}",
        )
