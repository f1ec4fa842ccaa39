"""Response headers every answer carries, and the ``Host`` check that stops DNS rebinding.

:class:`SecurityHeaders` adds, unless the route set its own: a Content-Security-Policy (pages:
scripts, styles, images and connections from this server only, no inline script, no framing
by anyone, forms post here only; anything else: nothing at all), ``X-Frame-Options: DENY``,
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
``Cross-Origin-Resource-Policy: same-origin``. The dashboard has no inline script or style
(Chart.js and ``app.js`` set styles through the CSSOM, which CSP allows); ``/docs`` brings one
inline script, allowed by its hash in :func:`docs_policy`.

:class:`HostCheck` answers 400 to a ``Host`` other than ``localhost`` (and ``*.localhost``),
an IP address, the ``--host`` name or a name of ``BACKBEAT_ALLOWED_HOSTS``. It guards a server
without a token (``app.WebServer`` puts it in front of the app on the network):
a page of evil.example whose name an attacker re-points at 127.0.0.1 reaches the server with
``Host: evil.example`` and is refused (rebinding needs a name, never an IP literal).

Next: ``app.py`` (which of these it installs), ``auth.py``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backbeat.serve.auth import send_error

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""The Content-Security-Policy of HTML pages."""
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"
"""The Content-Security-Policy of everything else (JSON, assets)."""
_FIXED = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: str) -> str:
    """The page policy, with the inline scripts of ``html`` allowed by their SHA-256."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    ]
    return PAGE_POLICY.replace("script-src 'self'", " ".join(["script-src 'self'", *hashes]))


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # a copy: cached answers are shared
                names = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in names:
                    html = any(
                        name.lower() == b"content-type" and value.startswith(b"text/html")
                        for name, value in headers
                    )
                    policy = PAGE_POLICY if html else OTHER_POLICY
                    headers.append((b"content-security-policy", policy.encode()))
                headers += [(name, value) for name, value in _FIXED if name not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _host_name(value: str) -> str:
    """The name part of a Host header (no port, lower case, no trailing dot)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rpartition(":")[0].rstrip(".") if ":" in value else value.rstrip(".")


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """May a request for ``host`` (a Host header) be served?"""
    name = _host_name(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    allowed = set(allowed)
    return "*" in allowed or name in allowed


class HostCheck:
    """ASGI middleware: 400 for a ``Host`` this server does not answer to."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            hosts = [v.decode("latin-1") for n, v in scope.get("headers", []) if n == b"host"]
            if len(hosts) > 1 or (hosts and not host_allowed(hosts[0], self.allowed)):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await _refuse(send, _host_name(hosts[0])[:100] if len(hosts) == 1 else "")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, name: str) -> None:
    reason = (
        f"this server does not answer to host {name!r}: it serves localhost, IP addresses and "
        "the names of BACKBEAT_ALLOWED_HOSTS (add it there; without a token only those are "
        "served, against DNS rebinding)"
        if name
        else "one Host header per request"
    )
    await send_error(send, 400, reason, [(b"x-content-type-options", b"nosniff")])
