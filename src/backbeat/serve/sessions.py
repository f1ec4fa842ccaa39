"""Dashboard logins: signed, timestamped session cookies that never carry the token.

A login with token *i* gets a cookie ``<session id>.<timestamp>.<signature>`` (itsdangerous'
``TimestampSigner``, HMAC-SHA256) signed with a key derived from token *i* alone, so:

- the cookie is made of URL-safe characters only (a token full of ``/``, ``+`` and ``=`` never
  reaches a cookie, so browsers never quote it);
- it expires after ``max_age_s`` (checked here, and the browser drops it then too);
- while two tokens are valid (rotation), both kinds of session work; once a token is removed
  from the configuration its key is gone and every session it opened is refused, on every
  server process and after restarts, with nothing stored;
- logout revokes the session id in this process (kept until the session would have expired).

Keys come from PBKDF2 over the token, so a stolen cookie is a slow offline oracle for the
token, not a fast one. Next: ``auth.py`` (who checks cookies), ``login.py`` (who issues them).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

COOKIE = "backbeat_session"
_SALT = b"backbeat session cookie v1"
_ROUNDS = 100_000
_MAX_REVOKED = 10_000


def cookie_values(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """Every session cookie value in a request's raw headers (all ``Cookie`` headers)."""
    return [
        part.partition("=")[2].strip()
        for name, value in headers
        if name == b"cookie"
        for part in value.decode("latin-1").split(";")
        if part.partition("=")[0].strip() == COOKIE
    ]


class Session(enum.Enum):
    """What a presented session cookie is worth."""

    VALID = "valid"
    EXPIRED = "expired"  # a real session, but too old or logged out: not a guess
    FORGED = "forged"  # not signed by any current key: tampered, invented or from a removed token


def session_key(token: bytes) -> bytes:
    """The signing key of the sessions opened with ``token`` (stable across restarts)."""
    return hashlib.pbkdf2_hmac("sha256", token, _SALT, _ROUNDS)


class _Signer(TimestampSigner):
    def __init__(self, key: bytes, clock: Callable[[], float]) -> None:
        super().__init__(key, salt="backbeat.session", digest_method=hashlib.sha256)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class Sessions:
    """Issue, check and revoke session cookie values for a list of tokens."""

    def __init__(
        self,
        tokens: Sequence[bytes],
        max_age_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._signers = [_Signer(session_key(token), clock) for token in tokens]
        self._revoked: dict[str, float] = {}  # session id -> when its cookie expires anyway

    def issue(self, token_index: int) -> str:
        """A new session value, signed with the key of the token that logged in."""
        sid = secrets.token_urlsafe(18)
        return self._signers[token_index].sign(sid).decode("ascii")

    def check(self, value: str) -> Session:
        """Is ``value`` a live session of one of the current tokens?"""
        sid = self._sid(value)
        if sid is None:
            return Session.FORGED
        if sid == "" or sid in self._revoked:
            return Session.EXPIRED
        return Session.VALID

    def revoke(self, value: str) -> None:
        """End the session ``value`` (logout); unknown or invalid values are ignored."""
        sid = self._sid(value)
        if not sid:
            return
        now = self._clock()
        if len(self._revoked) >= _MAX_REVOKED:
            self._revoked = {k: v for k, v in self._revoked.items() if v > now}
            while len(self._revoked) >= _MAX_REVOKED:  # oldest first (insertion order)
                del self._revoked[next(iter(self._revoked))]
        self._revoked[sid] = now + self.max_age_s

    def _sid(self, value: str) -> str | None:
        """The session id of a well-signed value; "" when it is well signed but expired;
        None when no current key signed it."""
        for signer in self._signers:
            try:
                return signer.unsign(value, max_age=self.max_age_s).decode("ascii")
            except SignatureExpired:
                return ""
            except BadSignature:
                continue
        return None
