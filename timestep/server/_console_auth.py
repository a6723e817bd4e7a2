"""The web console's sign-in: a signed session cookie, and a CSRF token per session.

Signing in with the API token sets an HttpOnly, SameSite=Strict cookie that holds no secret:
``<issued>.<nonce>.<mac>``, the mac keyed by a key derived from the API token (so changing the
token signs everyone out, and no session table is needed). Every form carries the session's
CSRF token (another mac of the same nonce); a POST whose token is wrong, or whose ``Origin``
is another site's, is refused. With ``--no-auth`` there is no sign-in, the loopback-only rule
of the HTTP API holds, and the CSRF token is keyed by a random key of the app.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from ._auth import require_loopback_client
from ._settings import ServerSettings

__all__ = [
    "COOKIE",
    "SESSION_SECONDS",
    "ConsoleSession",
    "NotSignedIn",
    "check_post",
    "console_key",
    "console_session",
    "new_session_cookie",
    "token_matches",
]

COOKIE = "timestep_console"
SESSION_SECONDS = 12 * 3600


class NotSignedIn(Exception):
    """No valid session cookie: pages redirect to the sign-in page, other routes answer 401."""


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str
    signed_in: bool  # False with --no-auth


def console_key(settings: ServerSettings) -> bytes:
    """The key that signs sessions and CSRF tokens: from the API token, else random."""
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if settings.auth and token:
        return hashlib.sha256(b"timestep-console\0" + token.encode()).digest()
    return secrets.token_bytes(32)


def _mac(key: bytes, purpose: str, nonce: str) -> str:
    return hmac.new(key, f"{purpose}\0{nonce}".encode(), hashlib.sha256).hexdigest()


def token_matches(settings: ServerSettings, given: str) -> bool:
    expected = settings.api_token.get_secret_value() if settings.api_token else ""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def new_session_cookie(key: bytes) -> str:
    nonce = f"{int(time.time())}.{secrets.token_urlsafe(18)}"
    return f"{nonce}.{_mac(key, 'session', nonce)}"


def _valid_nonce(key: bytes, cookie: str | None) -> str | None:
    if not cookie or cookie.count(".") != 2:
        return None
    issued, random_part, mac = cookie.split(".")
    nonce = f"{issued}.{random_part}"
    if not hmac.compare_digest(mac, _mac(key, "session", nonce)):
        return None
    if not issued.isdigit() or time.time() - int(issued) > SESSION_SECONDS:
        return None
    return nonce


def console_session(request: Request) -> ConsoleSession:
    """The request's session, or ``NotSignedIn``; 403 for a remote client under --no-auth."""
    settings: ServerSettings = request.app.state.settings
    key: bytes = request.app.state.console_key
    if not settings.auth:
        require_loopback_client(request)
        return ConsoleSession(csrf=_mac(key, "csrf", "no-auth"), signed_in=False)
    nonce = _valid_nonce(key, request.cookies.get(COOKIE))
    if nonce is None:
        raise NotSignedIn()
    return ConsoleSession(csrf=_mac(key, "csrf", nonce), signed_in=True)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # an old browser or a non-browser client; the CSRF token decides
        return True
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == str(request.base_url).rstrip("/")


def check_post(request: Request, given_csrf: str | None, expected_csrf: str | None) -> None:
    """403 unless a form post comes from this site: its Origin (when sent) is ours and it
    carries the session's CSRF token (``expected_csrf`` None: the sign-in form, Origin only)."""
    if not _same_origin(request):
        raise HTTPException(403, "cross-site form post refused (Origin is another site)")
    if expected_csrf is not None and not (
        given_csrf and hmac.compare_digest(given_csrf.encode(), expected_csrf.encode())
    ):
        raise HTTPException(403, "missing or invalid CSRF token: reload the page and try again")
