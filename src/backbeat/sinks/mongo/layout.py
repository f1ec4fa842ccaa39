"""What the MongoDB sink writes and how both sides connect: one collection per metric, one
document per (minute, item) with its full count, and a ``meta`` collection.

A count document is ``{_id: {window_start, <keys>}, window_start, <keys>, plays, batches}``:
``plays`` is the item's plays in that minute over every batch applied, ``batches`` the ids of
those batches (the guard that makes a replay a no-op). ``meta`` holds ``latest`` (the store's
latest event time, for ``last`` spans) and ``open_from`` (GenreWindows' first minute still
filling); ``applied`` maps each batch's token (from its resume mark) to the batch id it was
applied under.

Next: ``sink.py``, ``reader.py``.
"""

from __future__ import annotations

import re
from typing import Any, Final

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConfigurationError, InvalidURI, PyMongoError
from pymongo.uri_parser import parse_uri

from backbeat.errors import ConfigError, StoreError

Document = dict[str, Any]
KEYS: Final[dict[str, tuple[str, ...]]] = {
    "song_minute": ("track_id", "artist", "song"),
    "artist_minute": ("artist",),
    "genre_minute": ("genre",),
}
"""Each collection (named after its metric) and the item keys of its documents, in the order
of the metric's key columns."""
VALUE: Final = "plays"
META: Final = "meta"
APPLIED: Final = "applied"
LATEST: Final = "latest"
OPEN_FROM: Final = "open_from"
DEFAULT_DATABASE: Final = "backbeat"
TIMEOUT_MS: Final = 5_000
"""How long a call waits for a server before it fails (a one-line StoreError)."""
_USERINFO: Final = re.compile(r"//[^@/]*@")


def shown(url: str) -> str:
    """``url`` without its credentials, for messages and the sink's key."""
    return _USERINFO.sub("//", url)


def connect(
    url: str, database: str | None = None
) -> tuple[MongoClient[Document], Database[Document]]:
    """A client for ``url`` and the database to use (``database``, else the URL's, else
    ``backbeat``); nothing is sent until the first call.

    Raises:
        ConfigError: not a ``mongodb://`` or ``mongodb+srv://`` URL pymongo accepts.
    """
    if not url.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(f"{shown(url)!r} is not a MongoDB URL: give mongodb://host[:port]/db")
    try:
        name = database or parse_uri(url)["database"] or DEFAULT_DATABASE
        client: MongoClient[Document] = MongoClient(
            url, serverSelectionTimeoutMS=TIMEOUT_MS, connectTimeoutMS=TIMEOUT_MS,
            appname="backbeat", tz_aware=False,
        )  # fmt: skip
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise ConfigError(f"MongoDB URL {shown(url)!r}: {one_line(exc)}") from None
    return client, client[name]


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (pymongo's can run to a topology dump)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def failure(where: str, exc: PyMongoError) -> StoreError:
    """The one-line error for a failed call to the server at ``where``."""
    return StoreError(f"MongoDB at {where}: {one_line(exc)}")


def window_filter(start: int | None, end: int | None) -> Document:
    """A filter on ``window_start`` for ``[start, end)`` (None: unbounded)."""
    bounds: Document = {}
    if start is not None:
        bounds["$gte"] = start
    if end is not None:
        bounds["$lt"] = end
    return {"window_start": bounds} if bounds else {}
