"""What one client can make the web server hold: request heads, bodies, connections, streams.

:class:`Limits` gathers the values. :func:`server_options` applies the HTTP-level ones to
uvicorn: its own connection cap and keep-alive timeout, and :class:`LimitedHttp` (a size cap
and a deadline on request heads, which uvicorn lacks). Two ASGI middlewares apply the rest:
:class:`BodyLimit` (request bodies: size, time, a client leaving mid-body) and
:class:`StreamLimit` (open live streams). What one process cannot bound (per-IP caps, TLS,
slow clients by the thousand) is left to a reverse proxy: ``docs/security.md``.

Next: ``app.py`` (where they are applied), ``cache.py`` (the response cache's budget).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """The web server's limits (the defaults suit a dashboard and its API on a small machine).

    Attributes:
        max_head: bytes of a request head (request line and headers) at most; 431 past it.
        head_timeout_s: seconds a request head may take to arrive; the connection is closed.
        max_body: bytes of a request body at most (the login form needs a few hundred); 413.
        body_timeout_s: seconds a request body may take to arrive; 408.
        keep_alive_s: seconds an idle keep-alive connection stays open.
        max_connections: connections (or requests in progress) at once; 503 past it.
        max_streams: open ``/api/stream`` connections at once; 503 past it.
        cache_bytes: bytes of HTTP responses the response cache keeps at most.
        cache_entries: responses the response cache keeps at most.
    """

    max_head: int = 32 << 10
    head_timeout_s: float = 10.0
    max_body: int = 16 << 10
    body_timeout_s: float = 10.0
    keep_alive_s: int = 5
    max_connections: int = 512
    max_streams: int = 256
    cache_bytes: int = 16 << 20
    cache_entries: int = 4096


LIMITS = Limits()
UPDATE_CACHE_BYTES = 8 << 20
"""Bytes of live updates (``routes/live.py``) kept for the current and the previous batch."""


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size cap and a deadline on every request head.

    httptools accepts a head of any size and uvicorn waits for one forever (its keep-alive
    timer only runs between requests): a client could hold a connection with a trickle of
    header bytes (slowloris) or make the server buffer megabytes of headers. Here a head
    must end within ``max_head`` bytes (checked on each read, before the parser buffers it:
    431) and ``head_timeout_s`` of the connection or of its first byte (else the connection
    is closed; an idle one quietly, e.g. a browser's preconnect).
    """

    max_head: ClassVar[int] = LIMITS.max_head
    head_timeout_s: ClassVar[float] = LIMITS.head_timeout_s

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the next bytes belong to a request head
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():  # refused already: read no further
            return
        if self._in_head:
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > self.max_head:
                self._refuse_head()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # the next request of a kept-alive connection
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    def _stop_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes:  # an idle connection closes quietly
            log.warning(
                "closed the connection of %s: its request head was incomplete after %g s",
                _client(self.client),
                self.head_timeout_s,
            )
        self.transport.close()

    def _refuse_head(self) -> None:
        self._stop_timer()
        log.warning(
            "refused a request head of more than %s bytes from %s",
            f"{self.max_head:,}",
            _client(self.client),
        )
        if self.cycle is None or self.cycle.response_complete:  # no answer under way
            status, reason = 431, "Request Header Fields Too Large"
            body = _error_body(status, f"request headers are {self.max_head:,} bytes at most")
            head = [f"HTTP/1.1 {status} {reason}".encode()]
            head += [name + b": " + value for name, value in self.server_state.default_headers]
            head += [
                b"content-type: application/json",
                b"content-length: " + str(len(body)).encode(),
                b"connection: close",
            ]
            self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


def server_options(limits: Limits = LIMITS) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.Config`` that apply ``limits``."""

    class Http(LimitedHttp):
        max_head = limits.max_head
        head_timeout_s = limits.head_timeout_s

    return {
        "http": Http,
        "limit_concurrency": limits.max_connections,
        "timeout_keep_alive": limits.keep_alive_s,
    }


class BodyLimit:
    """ASGI middleware: a request body is read here, whole, before the app sees it, and
    refused when over ``max_bytes`` (413, from Content-Length before any of it is read) or
    slower than ``timeout_s`` (408); both close the connection. A client that goes away
    mid-body is one log line, and the app is not called."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = LIMITS.max_body,
        timeout_s: float = LIMITS.body_timeout_s,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, chunked = _declared_body(scope)
        if not length and not chunked:  # no body (every API request)
            await self.app(scope, receive, send)
            return
        where = f"{scope['method']} {scope.get('path', '')} from {_client(scope.get('client'))}"
        too_large = f"a request body is {self.max_bytes:,} bytes at most"
        if length is not None and length > self.max_bytes:
            log.warning("refused a body of %s bytes: %s", f"{length:,}", where)
            await _refuse(send, 413, too_large, close=True)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            log.warning("refused a body slower than %g s: %s", self.timeout_s, where)
            slow = f"send the request body within {self.timeout_s:g} s"
            await _refuse(send, 408, slow, close=True)
            return
        except _TooLargeError:
            log.warning("refused a chunked body over %s bytes: %s", f"{self.max_bytes:,}", where)
            await _refuse(send, 413, too_large, close=True)
            return
        except _GoneError:
            log.warning("the client went away while sending its request body: %s", where)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _GoneError
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _TooLargeError(Exception):
    """The body passed the cap."""


class _GoneError(Exception):
    """The client closed the connection mid-body."""


class StreamLimit:
    """ASGI middleware: at most ``max_streams`` requests to ``path`` (the live stream) in
    progress at once; the next get a 503 until one ends."""

    def __init__(
        self, app: ASGIApp, max_streams: int = LIMITS.max_streams, path: str = "/api/stream"
    ) -> None:
        self.app = app
        self.max_streams = max_streams
        self.path = path
        self.open = 0  # one event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        if self.open >= self.max_streams:
            log.warning("refused a live stream: %d are open (the limit)", self.open)
            reason = f"{self.max_streams} live streams are open (the limit): try again later"
            await _refuse(send, 503, reason, retry_after_s=10)
            return
        self.open += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1


def _declared_body(scope: Scope) -> tuple[int | None, bool]:
    """The request's Content-Length (None: not given) and whether its body is chunked."""
    length: int | None = None
    chunked = False
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None  # the HTTP parser refuses these before the app sees them
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read already, then what the client does next."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _error_body(status: int, reason: str) -> bytes:
    return json.dumps({"error": reason, "status": status}).encode()


async def _refuse(
    send: Send, status: int, reason: str, close: bool = False, retry_after_s: int | None = None
) -> None:
    """Answer with the app's error shape (``{"error", "status"}``)."""
    body = _error_body(status, reason)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    if retry_after_s is not None:
        headers.append((b"retry-after", b"%d" % retry_after_s))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _client(client: Any) -> str:
    """``host:port`` of a client address (or "a client")."""
    if isinstance(client, tuple | list) and len(client) == 2:
        return f"{client[0]}:{client[1]}"
    return "a client"
