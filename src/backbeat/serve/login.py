"""The dashboard's login and logout: ``GET /login`` (the form), ``POST /login`` (one token in,
a session cookie out) and ``POST /logout`` (the session ends, the cookie is cleared).

The cookie is ``HttpOnly``, ``SameSite=Strict``, lives ``session_max_age_s`` and is ``Secure``
when the request came over TLS (directly, or as a trusted proxy's ``X-Forwarded-Proto``
says). A wrong token counts against the client's address like any refused credential; a form
with several ``token`` fields is refused unchecked. Without a token configured, all three
lead to the dashboard.

Next: ``sessions.py`` (the cookie's value), ``auth.py`` (the checks), ``web/login.html``.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from backbeat.serve.auth import Gate, client_of, too_many
from backbeat.serve.sessions import COOKIE, Session, cookie_values

LEGACY_COOKIE = "backbeat_token"
"""What older versions stored: the token itself. Cleared at login and logout."""


def _cookies(request: Request) -> list[str]:
    return cookie_values(request.scope.get("headers", []))


def _refused(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "status": status}, status_code=status, headers=headers)


def login_routes(gate: Gate, page: Path) -> APIRouter:
    """The three routes, over ``gate``'s tokens, sessions and throttle; ``page``: the form."""
    router = APIRouter(include_in_schema=False)
    enabled = bool(gate.config.tokens)

    def to(location: str) -> RedirectResponse:
        response = RedirectResponse(location, status_code=303)
        response.headers["cache-control"] = "no-store"
        return response

    # async: on the event loop, like the middleware, so sessions and the throttle see no threads
    @router.get("/login")
    async def login_page(request: Request) -> Response:
        cookies = _cookies(request)
        if not enabled or (len(cookies) == 1 and gate.sessions.check(cookies[0]) is Session.VALID):
            return to("/")
        return FileResponse(page, headers={"cache-control": "no-cache"})

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not enabled:
            return to("/")
        client = client_of(request.scope)
        wait = gate.throttle.retry_after(client)
        if wait is not None:
            return _refused(429, too_many(wait), {"retry-after": str(wait)})
        body = (await request.body()).decode("utf-8", "replace")
        try:
            form = urllib.parse.parse_qs(body, keep_blank_values=True, max_num_fields=4)
            submitted = form.get("token", [])
            reason = f"one token per login: got {len(submitted)} token fields"
        except ValueError:  # more fields than a login form has
            submitted, reason = [], "one token per login: too many form fields"
        if len(submitted) != 1:
            gate.failed(client, reason, "POST", "/login")
            return _refused(400, reason)
        index = gate.token_index(submitted[0].strip().encode())
        if index is None:
            gate.failed(client, "wrong token at the login form", "POST", "/login")
            return to("/login?failed=1")
        response = to("/")
        response.set_cookie(
            COOKIE,
            gate.sessions.issue(index),
            max_age=gate.config.session_max_age_s,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        if LEGACY_COOKIE in request.cookies:
            response.delete_cookie(LEGACY_COOKIE)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        for value in _cookies(request):
            gate.sessions.revoke(value)
        response = to("/login" if enabled else "/")
        secure = request.url.scheme == "https"
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
        if LEGACY_COOKIE in request.cookies:
            response.delete_cookie(LEGACY_COOKIE)
        return response

    return router
