"""Optional token auth: with ``BACKBEAT_API_TOKEN`` set, the API and the dashboard need it.

A client proves it knows the token with ``Authorization: Bearer <token>`` or with the cookie
the login form sets (browsers' ``EventSource`` cannot send headers). ``/health``, the login
page and static assets stay open. Tokens are compared in constant time and never logged: the
token is never accepted in a URL, so access logs cannot carry it.

Next: ``app.py`` (the login routes), ``backbeat.settings`` (where the token comes from).
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "backbeat_token"
OPEN_PATHS = ("/health", "/login")
OPEN_PREFIXES = ("/static/",)


def _presented(scope: Scope) -> list[str]:
    """Tokens the request carries (bearer header, cookie)."""
    found: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                found.append(token.strip())
        elif name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, token = part.strip().partition("=")
                if key == COOKIE:
                    found.append(token)
    return found


class TokenAuth:
    """ASGI middleware: 401 (API) or a redirect to the login page (dashboard) without the token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    def allowed(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return True
        return any(hmac.compare_digest(t.encode(), self._token) for t in _presented(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope.get("path") == "/" and scope.get("method") == "GET":
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", b"/login")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps(
            {
                "error": "this server needs its API token: send 'Authorization: Bearer <token>' "
                "or log in at /login",
                "status": 401,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def matches(token: str, candidate: str) -> bool:
    """Constant-time comparison of a submitted token."""
    return hmac.compare_digest(candidate.encode(), token.encode())
