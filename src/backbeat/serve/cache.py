"""Answers computed once per committed batch: a read-through cache keyed by the hub's version.

Results only change when the engine commits, so every read is cached under the version it
was computed at and dropped when a newer batch lands. Concurrent askers of the same key share
one computation (single flight): 200 dashboards refreshing after a commit cost one query.
:class:`ResponseCache` applies this to whole HTTP responses of ``GET /api/...`` in front of
the routes, so a cached answer costs no routing, validation or serialization, and it does
not make requests queue behind a recomputation: while the first request after a commit
computes the new answer, the others get the previous batch's (stale while revalidate), so
an answer lags the newest commit by at most one recomputation.

Next: ``hub.py`` (the version), ``routes/`` (what is cached).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backbeat.serve.hub import CommitHub

T = TypeVar("T")


class Flights(Generic[T]):
    """Values computed at most once per (key, version); concurrent askers share a computation."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._max_entries = max_entries
        self._version = -1
        self._previous = -1  # the version before: the only one stale answers may come from
        self._values: dict[Hashable, asyncio.Future[T]] = {}
        self._latest: dict[Hashable, tuple[int, T]] = {}  # newest finished value per key

    def forget(self, key: Hashable) -> None:
        """Drop a value (one that must not be reused, e.g. an error answer)."""
        self._values.pop(key, None)
        self._latest.pop(key, None)

    async def get(
        self,
        key: Hashable,
        version: int,
        compute: Callable[[], Awaitable[T]],
        stale: bool = False,
    ) -> T:
        """The value of ``key`` at ``version``, computed by the first asker. With ``stale``,
        later askers get the value of the previous version while that computation runs (if
        there is one) instead of waiting for it: never an answer more than one batch old."""
        if version != self._version:
            if version < self._version:  # an asker that saw an older version: do not cache
                return await compute()
            self._values = {}
            self._previous, self._version = self._version, version
            # Stale answers are only ever one batch old: forget anything older.
            self._latest = {k: v for k, v in self._latest.items() if v[0] >= self._previous}
        future = self._values.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            if len(self._values) < self._max_entries:
                self._values[key] = future
            try:
                value = await compute()
            except BaseException as exc:
                self._values.pop(key, None)
                future.cancel()
                raise exc from None
            future.set_result(value)
            if stale:
                self._remember(key, version, value)
            return value
        if stale and not future.done():
            known = self._latest.get(key)
            if known is not None and known[0] == self._previous:
                return known[1]
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled():  # the computation failed: compute for ourselves
                return await compute()
            raise

    def _remember(self, key: Hashable, version: int, value: T) -> None:
        known = self._latest.get(key)
        if known is not None and known[0] > version:
            return
        if known is None and len(self._latest) >= self._max_entries:
            return
        self._latest[key] = (version, value)


_Response = tuple[Message, bytes]


class ResponseCache:
    """ASGI middleware: repeated ``GET`` requests under ``prefix`` are answered from memory
    until the next commit (responses other than 200 are shared by concurrent askers only)."""

    def __init__(
        self, app: ASGIApp, hub: CommitHub, prefix: str = "/api/", skip: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.hub = hub
        self.prefix = prefix
        self.skip = skip
        self._flights: Flights[_Response] = Flights()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not path.startswith(self.prefix)
            or path in self.skip
        ):
            await self.app(scope, receive, send)
            return
        key = (path, scope.get("query_string", b""))

        async def compute() -> _Response:
            captured: dict[str, Any] = {"start": None, "body": []}

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    captured["start"] = message
                elif message["type"] == "http.response.body":
                    captured["body"].append(message.get("body", b""))

            await self.app(scope, receive, capture)
            return captured["start"], b"".join(captured["body"])

        start, body = await self._flights.get(key, self.hub.version, compute, stale=True)
        if start["status"] != 200:
            self._flights.forget(key)
        await send(start)
        await send({"type": "http.response.body", "body": body})
