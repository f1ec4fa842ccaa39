"""Named queries over what the MongoDB sink wrote (``--store mongodb://host:port/db``): the
rankings and the genre windows, with the embedded store's columns, order and tie-breaks.

TopSongs and TopArtists sum the count documents of the windows asked for (``$match`` on the
indexed ``window_start``, ``$group``, ``$sort`` by plays then the same keys DuckDB breaks ties
with, ``$limit``); GenreWindows reads the (minute, genre) documents in order, each already
holding its full count. ``last`` spans end with the minute of the latest event time the sink
recorded. Filtered rankings need the raw listens, which MongoDB does not hold: they, and every
other query, are refused (the API answers 501).

Next: ``sink.py`` (the writer), ``layout.py`` (the documents), ``../duckdb/answers.py``.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import PyMongoError

from backbeat.errors import UnsupportedQueryError
from backbeat.sinks import queries as q
from backbeat.sinks.mongo.layout import (
    LATEST,
    META,
    OPEN_FROM,
    VALUE,
    Document,
    connect,
    failure,
    shown,
    window_filter,
)  # fmt: skip

MINUTE: Final = 60_000
SONGS: Final = pa.schema(
    [("artist", pa.string()), ("song", pa.string()), ("track_id", pa.string()),
     ("plays", pa.int64())]
)  # fmt: skip
ARTISTS: Final = pa.schema([("artist", pa.string()), ("plays", pa.int64())])
GENRE_WINDOWS: Final = pa.schema(
    [("window_start", pa.timestamp("us")), ("genre", pa.string()), ("plays", pa.int64()),
     ("open_from", pa.int64())]
)  # fmt: skip


class MongoReader(q.Reader):
    """Answers TopSongs, TopArtists (unfiltered) and GenreWindows from the sink's documents."""

    def __init__(self, url: str, database: str | None = None) -> None:
        self._client, self._db = connect(url, database)
        self._where = f"{shown(url)} (database {self._db.name!r})"

    @classmethod
    def reader_at(cls, location: str) -> MongoReader:
        """The reader of the database at ``location`` (a ``mongodb://`` URL).

        Raises:
            ConfigError: not a MongoDB URL; StoreError: no server answers there.
        """
        reader = cls(location)
        try:
            reader._client.admin.command("ping")
        except PyMongoError as exc:
            reader.close()
            raise failure(reader._where, exc) from None
        return reader

    def answers(self) -> frozenset[str]:
        return frozenset(q.name_of(kind) for kind in (q.TopSongs, q.TopArtists, q.GenreWindows))

    def run(self, query: q.Query) -> pa.Table:
        try:
            if isinstance(query, q.TopSongs | q.TopArtists):
                if not query.keep.empty:
                    raise UnsupportedQueryError(
                        f"this store does not answer {q.name_of(query)!r} with filters: MongoDB "
                        "holds per-minute counts, not the listens a filter needs"
                    )
                return self._top(query)
            if isinstance(query, q.GenreWindows):
                return self._genre_windows(query)
        except PyMongoError as exc:
            raise failure(self._where, exc) from None
        raise self.refuse(query)

    def close(self) -> None:
        self._client.close()

    def _meta(self, name: str) -> int | None:
        doc = self._db[META].find_one({"_id": name})
        return None if doc is None or doc.get("ts") is None else int(doc["ts"])

    def _span(self, span: q.TimeRange) -> Document | None:
        """The filter for ``span`` (None: ``last`` before any event, so nothing matches)."""
        start = span.start
        if span.last is not None:
            latest = self._meta(LATEST)
            if latest is None:
                return None
            since = latest // MINUTE * MINUTE - (span.last - MINUTE)
            start = since if start is None else max(start, since)
        return window_filter(start, span.end)

    def _top(self, query: q.TopSongs | q.TopArtists) -> pa.Table:
        songs = isinstance(query, q.TopSongs)
        schema = SONGS if songs else ARTISTS
        where = self._span(query.span)
        if where is None:
            return schema.empty_table()
        keys = [name for name in schema.names if name != VALUE]
        ranked = self._db["song_minute" if songs else "artist_minute"].aggregate(
            [
                {"$match": where},
                {"$group": {"_id": {k: f"${k}" for k in keys}, VALUE: {"$sum": f"${VALUE}"}}},
                {"$sort": {VALUE: DESCENDING, **{f"_id.{k}": ASCENDING for k in keys}}},
                {"$limit": query.limit},
            ]
        )
        rows = [{**doc["_id"], VALUE: doc[VALUE]} for doc in ranked]
        return pa.Table.from_pylist(rows, schema=schema)

    def _genre_windows(self, query: q.GenreWindows) -> pa.Table:
        where = self._span(query.span)
        if where is None:
            return GENRE_WINDOWS.empty_table()
        found = (
            self._db["genre_minute"]
            .find(where, {"_id": 0, "window_start": 1, "genre": 1, VALUE: 1})
            .sort([("window_start", ASCENDING), ("genre", ASCENDING)])
            .limit(query.limit)
        )
        docs: list[dict[str, Any]] = list(found)
        open_from = self._meta(OPEN_FROM)
        return pa.table(
            {
                "window_start": pa.array([d["window_start"] * 1000 for d in docs], pa.int64()),
                "genre": [d["genre"] for d in docs],
                "plays": pa.array([d[VALUE] for d in docs], pa.int64()),
                "open_from": pa.array([open_from] * len(docs), pa.int64()),
            }
        ).cast(GENRE_WINDOWS)
