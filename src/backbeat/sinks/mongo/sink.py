"""The MongoDB result sink (``--sink mongo``): each batch's plays per minute and song, artist
and genre added to count documents, exactly once by batch id, from any number of writers.

Every row of a batch's ``song_minute``, ``artist_minute`` and ``genre_minute`` partials is an
upsert on its document (``layout.py``) with the filter ``{_id, batches: {$ne: B}}`` and the
update ``{$inc: {plays: n}, $push: {batches: B}}``: a document that already holds batch ``B``
does not match, the upsert's insert then fails on ``_id`` (duplicate key, 11000) and the row
is skipped. Applying a batch twice therefore changes nothing, in any order and from several
processes (consumer-group members). Before the store commits a batch, :meth:`MongoSink.begin`
returns its rows and a token as the resume mark, committed with the batch; :meth:`write`
applies them; on start :meth:`resume` applies the last committed mark again (a no-op when the
write had finished). The token is recorded with the batch id it is first applied under, so a
mark applied again always uses that id. After each write the ``meta`` documents take the
store's latest event time and GenreWindows' ``open_from``, both read from the primary store.

Next: ``layout.py`` (the documents), ``reader.py`` (the answers), ``../base.py`` (the contract).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError
from pymongo.uri_parser import parse_uri

from backbeat.errors import ConfigError, StoreError
from backbeat.events.schema import Topic
from backbeat.sinks.base import Guarantee, Mark, ResultSink, SinkBatch, SinkSpec
from backbeat.sinks.mongo.layout import (
    APPLIED,
    KEYS,
    LATEST,
    META,
    OPEN_FROM,
    VALUE,
    connect,
    failure,
    one_line,
    shown,
)  # fmt: skip
from backbeat.sinks.queries import GenreWindows, LatestTime, Reader, TimeRange

log = logging.getLogger(__name__)

ENV_URL = "BACKBEAT_MONGO_URL"
OPTIONS = frozenset({"url", "database"})
DUPLICATE_KEY = 11000


class MongoSink(ResultSink):
    """Plays per minute and song, artist and genre as MongoDB documents, exactly once."""

    name = "mongo"
    guarantee = Guarantee.EXACTLY_ONCE

    def __init__(self, url: str, database: str | None = None) -> None:
        self._client, self._db = connect(url, database)
        hosts = ",".join(f"{h}:{p}" for h, p in parse_uri(url)["nodelist"]) or shown(url)
        self._key = f"mongo:{hosts}/{self._db.name}"
        self._where = f"{shown(url)} (database {self._db.name!r})"
        self._reader: Reader | None = None
        self._pending: Mark | None = None  # planned by begin(), not yet written

    @property
    def key(self) -> str:
        return self._key

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> MongoSink:
        unknown = sorted(set(spec.options) - OPTIONS)
        if unknown:
            raise ConfigError(
                f"the mongo sink has no option {', '.join(unknown)} (it takes: url, database)"
            )
        option = spec.options.get("url")
        if option and urlsplit(option).password:
            raise ConfigError(
                "--sink-option mongo.url: a password in the URL would show in the process "
                f"listing; give the whole URL in {ENV_URL} instead"
            )
        url = option or os.environ.get(ENV_URL)
        if not url:
            raise ConfigError(
                "the mongo sink needs a server: --sink-option mongo.url=mongodb://host:port/db "
                f"(or {ENV_URL})"
            )
        return cls(url, spec.options.get("database") or None)

    def resume(self, batch_id: int, mark: Mark | None, reader: Reader) -> None:
        """Create the indexes; apply the last committed batch's rows again (a no-op if done).

        Raises:
            StoreError: the server cannot be reached or refused a write.
        """
        self._reader = reader
        try:
            for name, keys in KEYS.items():
                self._db[name].create_index(
                    [("window_start", ASCENDING), *((k, ASCENDING) for k in keys)]
                )
        except PyMongoError as exc:
            raise failure(self._where, exc) from None
        if mark and mark.get("rows"):
            batch = self._apply(batch_id, mark)
            log.info("%s: applied batch %d again (documents holding it skipped)", self.key, batch)
        else:
            self._guarded(self._latest)

    def begin(self, batch: SinkBatch) -> Mark | None:
        """The batch's rows and a fresh token (``{}`` for a batch without listens: nothing to
        redo); a mark for every batch, so the committed one is always the last batch's."""
        rows = {name: _rows(batch.partials.get(name), keys) for name, keys in KEYS.items()}
        if not any(rows.values()):
            self._pending = None
            return {}
        self._pending = {"token": uuid.uuid4().hex, "rows": rows}
        return self._pending

    def write(
        self,
        batch_id: int,
        partials: Mapping[str, pa.Table],
        events: Mapping[Topic, pa.Table],
        dead_letters: pa.Table,
    ) -> None:
        """Apply the rows :meth:`begin` planned under ``batch_id``.

        Raises:
            StoreError: the server cannot be reached or refused a write (redone at restart).
        """
        if self._pending is not None:
            self._apply(batch_id, self._pending)
            self._pending = None
        else:  # no listens: only the latest event time can have moved
            self._guarded(self._latest)

    def settle(self) -> Mark | None:
        """Nothing to redo after the last write (None while a planned write is unfinished)."""
        return None if self._pending is not None else {}

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ writing

    def _apply(self, batch_id: int, mark: Mark) -> int:
        """Apply a mark's rows; the batch id they are applied under."""
        rows: dict[str, list[list[Any]]] = mark["rows"]
        try:
            applied = self._db[APPLIED].find_one_and_update(
                {"_id": mark["token"]}, {"$setOnInsert": {"batch": batch_id}},
                upsert=True, return_document=ReturnDocument.AFTER,
            )  # fmt: skip
            batch = int(applied["batch"]) if applied else batch_id
            for name, keys in KEYS.items():
                self._upsert(name, keys, batch, rows.get(name, []))
            self._meta(batch, rows.get("genre_minute", []))
        except PyMongoError as exc:
            raise failure(self._where, exc) from None
        return batch

    def _upsert(self, name: str, keys: tuple[str, ...], batch: int, rows: list[list[Any]]) -> None:
        ops = []
        for window, *items, plays in rows:
            fields = {"window_start": window, **dict(zip(keys, items, strict=True))}
            ops.append(
                UpdateOne(
                    {"_id": fields, "batches": {"$ne": batch}},
                    {"$inc": {VALUE: plays}, "$push": {"batches": batch},
                     "$setOnInsert": fields},
                    upsert=True,
                )
            )  # fmt: skip
        for attempt in (1, 2):
            if not ops:
                return
            try:
                self._db[name].bulk_write(ops, ordered=False)
                return
            except BulkWriteError as exc:
                ops = self._retry(name, ops, exc.details, last=attempt == 2)

    def _retry(
        self, name: str, ops: list[UpdateOne], details: Mapping[str, Any], last: bool
    ) -> list[UpdateOne]:
        """The ops to try once more: those that failed on a duplicate ``_id``. A duplicate
        means the document holds the batch already, or another writer inserted it between
        our match and our insert; the second try tells them apart (a second duplicate: the
        batch is there). Any other failure raises."""
        errors = list(details.get("writeErrors", []))
        other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        concern = details.get("writeConcernErrors") or []
        if other or concern:
            first = (other or concern)[0]
            raise StoreError(
                f"MongoDB at {self._where} refused a write to {name}: "
                f"{one_line(Exception(first.get('errmsg', first)))}"
            )
        return [] if last else [ops[e["index"]] for e in errors]

    def _guarded(self, call: Callable[[], None]) -> None:
        try:
            call()
        except PyMongoError as exc:
            raise failure(self._where, exc) from None

    def _latest(self) -> None:
        """The store's latest event time (``$max``: it never goes back)."""
        assert self._reader is not None, "resume() first"
        latest = self._reader.one(LatestTime()).get("t")
        if latest is not None:
            self._db[META].update_one({"_id": LATEST}, {"$max": {"ts": int(latest)}}, upsert=True)

    def _meta(self, batch: int, genre_rows: list[list[Any]]) -> None:
        """The latest event time, and GenreWindows' ``open_from`` as the store answers it
        after this batch (the value of the highest batch id wins)."""
        assert self._reader is not None, "resume() first"
        meta = self._db[META]
        self._latest()
        if not genre_rows:
            return
        newest = max(int(row[0]) for row in genre_rows)
        answer = self._reader.one(GenreWindows(span=TimeRange(start=newest), limit=1))
        if not answer:
            return
        try:
            meta.update_one(
                {"_id": OPEN_FROM, "batch": {"$lt": batch}},
                {"$set": {"batch": batch, "ts": answer["open_from"]}},
                upsert=True,
            )
        except DuplicateKeyError:
            log.debug("open_from: a batch after %d already set it", batch)


def _rows(table: pa.Table | None, keys: tuple[str, ...]) -> list[list[Any]]:
    """A partial's rows as ``[window_start, *keys, plays]`` lists (JSON for the mark)."""
    if table is None or not table.num_rows:
        return []
    columns = [table.column(c).to_pylist() for c in ("window_start", *keys, VALUE)]
    return [list(row) for row in zip(*columns, strict=True)]
