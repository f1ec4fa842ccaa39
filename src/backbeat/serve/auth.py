"""Token auth: with ``BACKBEAT_API_TOKEN`` set, the API and the dashboard need a credential.

A request carries exactly one credential: ``Authorization: Bearer <token>`` (API clients) or
the session cookie a dashboard login sets (``sessions.py``: signed and timestamped, never the
token; browsers' ``EventSource`` cannot send headers). Several ``Authorization`` headers or
several session cookies are refused (400) unchecked, and a header sent with a cookie must be
as valid as the cookie, so one request tests one guess at most. ``/health``, the login and
logout routes and static assets stay open. Tokens are compared in constant time and never
logged, and the token is never accepted in a URL, so access logs cannot carry it.

Every refused credential counts against the client's address (``throttle.py``; the address
is the peer's unless a trusted proxy forwarded it, ``proxies.py``) and is logged with that
address and the reason, never the value. Two tokens may be valid at once for rotation
(``BACKBEAT_API_TOKEN_PREVIOUS``). ``docs/security.md`` describes it for operators.

Next: ``login.py`` (the login form), ``app.py`` (the middleware stack), ``backbeat.settings``.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from backbeat.errors import ConfigError
from backbeat.serve.sessions import COOKIE, Session, Sessions, cookie_values
from backbeat.serve.throttle import Throttle
from backbeat.settings import Settings

log = logging.getLogger(__name__)

OPEN_PATHS = ("/health", "/login", "/logout")
OPEN_PREFIXES = ("/static/",)
MISSING = (
    "this server needs its API token: send 'Authorization: Bearer <token>' or log in at /login"
)


@dataclass(frozen=True)
class AuthConfig:
    """What the web server checks (picklable: it crosses to the web server's process).

    Attributes:
        tokens: the valid tokens, the current one first; none: no auth.
        trusted_proxies: addresses or networks whose forwarding headers are believed.
        allowed_hosts: host names served besides localhost and IP addresses.
        failures_per_minute: refused credentials per client address and minute before 429.
        session_max_age_s: life of a dashboard login.
    """

    tokens: tuple[SecretStr, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    failures_per_minute: int = 10
    session_max_age_s: int = 43_200

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        """The login settings of ``settings``.

        Raises:
            ConfigError: a previous token without a current one.
        """
        if settings.api_token_previous is not None and settings.api_token is None:
            raise ConfigError(
                "BACKBEAT_API_TOKEN_PREVIOUS is set without BACKBEAT_API_TOKEN: set the new "
                "token too (the previous one is only accepted alongside it)"
            )
        tokens = [t for t in (settings.api_token, settings.api_token_previous) if t is not None]
        unique = {t.get_secret_value(): t for t in tokens}
        return cls(
            tokens=tuple(unique.values()),
            trusted_proxies=tuple(settings.trusted_proxies),
            allowed_hosts=tuple(settings.allowed_hosts),
            failures_per_minute=settings.auth_failures_per_minute,
            session_max_age_s=settings.session_max_age_s,
        )

    @classmethod
    def of(cls, auth: AuthConfig | str | None) -> AuthConfig:
        """``auth`` itself, one token with the defaults, or (None) no auth.

        Raises:
            ConfigError: an empty token (it never means "no auth").
        """
        if isinstance(auth, AuthConfig):
            return auth
        if auth is None:
            return cls()
        if not auth.strip():
            raise ConfigError("the API token is empty: pass a token, or None for no auth")
        return cls(tokens=(SecretStr(auth.strip()),))


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking a request's credentials."""

    status: int  # 200: let it through
    reason: str
    counted: bool = False  # a failure that counts towards the throttle


_OK = Verdict(200, "")


class Gate:
    """The checks shared by the middleware and the login form, and the failure bookkeeping."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._tokens = [t.get_secret_value().encode() for t in config.tokens]
        self.sessions = Sessions(self._tokens, config.session_max_age_s)
        self.throttle = Throttle(config.failures_per_minute)

    def token_index(self, candidate: bytes) -> int | None:
        """Which token ``candidate`` is (compared in constant time with each), or None."""
        found = None
        for index, token in enumerate(self._tokens):
            if hmac.compare_digest(candidate, token) and found is None:
                found = index
        return found

    def check(self, headers: list[tuple[bytes, bytes]]) -> Verdict:
        """One credential, and a valid one? (Nothing is checked when there are several.)"""
        bearers = [value for name, value in headers if name == b"authorization"]
        cookies = cookie_values(headers)
        if len(bearers) > 1 or len(cookies) > 1:
            return Verdict(
                400,
                f"one credential per request: got {len(bearers)} Authorization headers and "
                f"{len(cookies)} {COOKIE} cookies",
                counted=True,
            )
        if not bearers and not cookies:
            return Verdict(401, MISSING)
        if bearers:
            scheme, _, token = bearers[0].strip().partition(b" ")
            if scheme.lower() != b"bearer":
                return Verdict(401, "not a Bearer Authorization header", counted=True)
            if self.token_index(token.strip()) is None:
                return Verdict(401, "wrong token in the Authorization header", counted=True)
        if cookies:
            session = self.sessions.check(cookies[0])
            if session is Session.FORGED:
                return Verdict(401, "session cookie not signed by a current token", counted=True)
            if session is Session.EXPIRED:
                return Verdict(401, "the session has expired or was logged out: log in again")
        return _OK

    def failed(self, client: str, reason: str, method: str, path: str) -> None:
        """Count and log a refused credential of ``client`` (never its value)."""
        log.warning("auth: refused %s %.100r from %s: %s", method, path, client, reason)
        wait = self.throttle.fail(client)
        if wait is not None:
            log.warning(
                "auth: %s failed %d times within a minute: its requests get 429 for %d s",
                client,
                self.throttle.per_minute,
                wait,
            )


def client_of(scope: Scope) -> str:
    """The client address of a request (after ``proxies.ForwardedHeaders``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class TokenAuth:
    """ASGI middleware: 401 (API) or a redirect to the login page (dashboard) without a
    valid credential; 400 with several; 429 while the client's address is throttled."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        client = client_of(scope)
        wait = self.gate.throttle.retry_after(client)
        if wait is not None:
            await send_error(send, 429, too_many(wait), [(b"retry-after", str(wait).encode())])
            return
        verdict = self.gate.check(scope.get("headers", []))
        if verdict.status == 200:
            await self.app(scope, receive, send)
            return
        if verdict.counted:
            self.gate.failed(client, verdict.reason, scope.get("method", ""), path)
        if verdict.status == 401 and path == "/" and scope.get("method") == "GET":
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", b"/login")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return
        extra = [(b"www-authenticate", b"Bearer")] if verdict.status == 401 else []
        await send_error(send, verdict.status, verdict.reason, extra)


def too_many(wait: int) -> str:
    """The reason of a 429."""
    return f"too many refused credentials from this address: try again in {wait} s"


async def send_error(
    send: Send, status: int, reason: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """The app's error shape, ``{"error": reason, "status": status}``, from a middleware."""
    body = json.dumps({"error": reason, "status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
