"""Answers computed once per committed batch: a read-through cache keyed by the hub's version.

Results only change when the engine commits, so every read is cached under the version it
was computed at and dropped when a newer batch lands. Concurrent askers of the same key share
one computation (single flight): 200 dashboards refreshing after a commit cost one query.
:class:`ResponseCache` applies this to whole HTTP responses of ``GET /api/...`` in front of
the routes, so a cached answer costs no routing or serialization, and it does not make
requests queue behind a recomputation: while the first request after a commit computes the
new answer, the others get the previous batch's (stale while revalidate), so an answer lags
the newest commit by at most one recomputation.

A response is cached under its route's *validated* query parameters (unknown ones dropped,
defaults filled in, values parsed as the route parses them), so junk parameters, their order
or repetition cannot make new entries; a request the route would refuse is never cached. What
is kept is bounded in entries and in bytes (least recently used first out), also on an idle
server where no commit ever clears it.

Next: ``hub.py`` (the version), ``routes/`` (what is cached), ``limits.py`` (the budget).
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backbeat.serve.hub import CommitHub
from backbeat.serve.limits import LIMITS, Limits

T = TypeVar("T")
ENTRY_BYTES = 256
"""What an entry costs besides its key and value (the bookkeeping around them), roughly."""
KEYS_MEMO = 1024
"""Query strings whose validated key is remembered (validating costs ~60 µs a request)."""
KEYS_MEMO_QUERY = 512
"""Only query strings up to this many bytes are remembered."""


class _Entry(Generic[T]):
    __slots__ = ("nbytes", "value", "version")

    def __init__(self, version: int, value: T, nbytes: int) -> None:
        self.version = version
        self.value = value
        self.nbytes = nbytes


def _no_size(key: Hashable, value: object) -> int:
    return 0


class Flights(Generic[T]):
    """Values computed at most once per (key, version); concurrent askers share a computation.

    Finished values are kept for the current version and the one before (stale answers),
    at most ``max_entries`` of them and ``max_bytes`` in all (``size(key, value)`` plus
    :data:`ENTRY_BYTES` each): past either, the least recently used go first, and a value
    larger than the whole budget is returned but not kept.
    """

    def __init__(
        self,
        max_entries: int = LIMITS.cache_entries,
        max_bytes: int = LIMITS.cache_bytes,
        size: Callable[[Hashable, T], int] = _no_size,
    ) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._size = size
        self._version = -1
        self._previous = -1  # the version before: the only one stale answers may come from
        self._running: dict[Hashable, asyncio.Future[T]] = {}  # computations of this version
        self._done: OrderedDict[Hashable, _Entry[T]] = OrderedDict()  # least recent first
        self._bytes = 0

    def __len__(self) -> int:
        """Values kept now."""
        return len(self._done)

    @property
    def nbytes(self) -> int:
        """The accounted size of the values kept now."""
        return self._bytes

    def forget(self, key: Hashable) -> None:
        """Drop a value (one that must not be reused, e.g. an error answer)."""
        entry = self._done.pop(key, None)
        if entry is not None:
            self._bytes -= entry.nbytes

    async def get(
        self,
        key: Hashable,
        version: int,
        compute: Callable[[], Awaitable[T]],
        stale: bool = False,
    ) -> T:
        """The value of ``key`` at ``version``, computed by the first asker. With ``stale``,
        later askers get the value of the previous version while that computation runs (if
        there is one) instead of waiting for it: never an answer more than one batch old.
        A failed computation is not shared: each waiting asker then computes for itself."""
        if version != self._version:
            if version < self._version:  # an asker that saw an older version: do not cache
                return await compute()
            self._running = {}
            self._previous, self._version = self._version, version
            for old in [k for k, e in self._done.items() if e.version < self._previous]:
                self.forget(old)  # stale answers are only ever one batch old
        entry = self._done.get(key)
        if entry is not None and entry.version == version:
            self._done.move_to_end(key)
            return entry.value
        future = self._running.get(key)
        if future is None:
            return await self._compute(key, version, compute)
        if stale and entry is not None and entry.version == self._previous:
            return entry.value
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled():  # the computation failed: compute for ourselves
                return await compute()
            raise

    async def _compute(self, key: Hashable, version: int, compute: Callable[[], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            value = await compute()
        except BaseException as exc:
            future.cancel()
            raise exc from None
        finally:
            if self._running.get(key) is future:
                del self._running[key]
        future.set_result(value)
        self._keep(key, version, value)
        return value

    def _keep(self, key: Hashable, version: int, value: T) -> None:
        if version < self._previous:
            return  # too old to be served to anyone
        known = self._done.get(key)
        if known is not None and known.version > version:
            return
        nbytes = self._size(key, value) + ENTRY_BYTES
        if nbytes > self._max_bytes:
            return
        self.forget(key)
        self._done[key] = _Entry(version, value, nbytes)
        self._bytes += nbytes
        while self._bytes > self._max_bytes or len(self._done) > self._max_entries:
            _, evicted = self._done.popitem(last=False)
            self._bytes -= evicted.nbytes


_Response = tuple[Message, bytes]


def _response_bytes(key: Hashable, response: _Response) -> int:
    start, body = response
    headers = sum(len(name) + len(value) for name, value in start.get("headers", []))
    return len(body) + headers + len(repr(key))


def _query_fields(dependant: Dependant) -> list[Any] | None:
    """The query parameters of a route and of its dependencies; None when it reads anything
    else of the request (then its answer may depend on more than its query)."""
    if (
        dependant.path_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.request_param_name
        or dependant.http_connection_param_name
    ):
        return None
    fields: list[Any] = list(dependant.query_params)
    for sub in dependant.dependencies:
        more = _query_fields(sub)
        if more is None:
            return None
        fields += more
    return fields


class ResponseCache:
    """ASGI middleware: repeated ``GET`` requests under ``prefix`` are answered from memory
    until the next commit (responses other than 200 are shared by concurrent askers only).

    Each route's query parameters are learnt from its first request (which is not cached):
    later requests are cached under their validated values, and those the route would refuse
    are passed on uncached.
    """

    def __init__(
        self,
        app: ASGIApp,
        hub: CommitHub,
        prefix: str = "/api/",
        skip: tuple[str, ...] = (),
        limits: Limits = LIMITS,
    ) -> None:
        self.app = app
        self.hub = hub
        self.prefix = prefix
        self.skip = skip
        self.flights: Flights[_Response] = Flights(
            limits.cache_entries, limits.cache_bytes, _response_bytes
        )
        self._fields: dict[str, Sequence[Any] | None] = {}  # path -> its route's query fields
        self._memo = functools.lru_cache(maxsize=KEYS_MEMO)(self._validated)

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
        key = self._key(path, scope.get("query_string", b""))
        if key is None:
            await self.app(scope, receive, send)
            if path not in self._fields:
                self._learn(path, scope.get("route"))
            return

        async def compute() -> _Response:
            captured: dict[str, Any] = {"start": None, "body": []}

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    captured["start"] = message
                elif message["type"] == "http.response.body":
                    captured["body"].append(message.get("body", b""))

            await self.app(scope, receive, capture)
            return captured["start"], b"".join(captured["body"])

        start, body = await self.flights.get(key, self.hub.version, compute, stale=True)
        if start["status"] != 200:
            self.flights.forget(key)
        await send(start)
        await send({"type": "http.response.body", "body": body})

    def _learn(self, path: str, route: object) -> None:
        """Remember the query parameters of the route that answered ``path`` (FastAPI puts it
        in the scope), if it answers that path only and reads nothing but its query."""
        if isinstance(route, APIRoute) and route.path == path and "GET" in (route.methods or ()):
            self._fields[path] = _query_fields(route.dependant)

    def _key(self, path: str, query: bytes) -> Hashable | None:
        """The cache key of a request: its path and validated parameters (None: not cached)."""
        if self._fields.get(path) is None:
            return None
        if len(query) > KEYS_MEMO_QUERY:
            return self._validated(path, query)
        key: Hashable | None = self._memo(path, query)
        return key

    def _validated(self, path: str, query: bytes) -> Hashable | None:
        fields = self._fields.get(path)
        if fields is None:
            return None
        values, errors = request_params_to_args(fields, QueryParams(query))
        if errors:
            return None
        parts = tuple(
            sorted((name, tuple(v) if isinstance(v, list) else v) for name, v in values.items())
        )
        try:
            hash(parts)
        except TypeError:
            return None
        return path, parts
