"""Stores by ``--store`` location and result sinks by ``--sink`` name, imported lazily.

A ``--store`` location is a folder (the embedded DuckDB store) or a URL whose scheme names the
backend (``duckdb://FOLDER``). The store holds the checkpoint and answers the reader. Result
sinks are added by name (``--sink csv --csv FILE``); each states its guarantee. Layers above
the sinks build backends only through these functions, never by importing one.

Next: ``base.py`` (the contracts), ``../plugins.py`` (the registry mechanics).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Final, cast

from backbeat.errors import ConfigError, StoreNotReadyError
from backbeat.plugins import Plugin, Registry
from backbeat.sinks.base import ResultSink, SinkSpec, Store
from backbeat.sinks.queries import Reader
from backbeat.sinks.shelf import Shelf

log = logging.getLogger(__name__)

STORES: Final = Registry(
    "store",
    Plugin(
        "store",
        "duckdb",
        "backbeat.sinks.duckdb.store:DuckDBStore",
        "one DuckDB file in a folder: results, dead letters and checkpoint (the default)",
    ),
    Plugin(
        "store",
        "postgresql",
        "backbeat.sinks.postgres.store:PostgresStore",
        "postgresql://[user@]host[:port]/db: one PostgreSQL database that several processes "
        "write and serve from (password from PGPASSWORD or ~/.pgpass)",
        extra="postgres",
        needs=("psycopg", "psycopg_pool"),
    ),
)
READERS: Final = Registry(
    "reader",
    Plugin(
        "reader",
        "mongodb",
        "backbeat.sinks.mongo.reader:MongoReader",
        "mongodb://host[:port]/db: the ranked routes from what --sink mongo wrote (serve only)",
        extra="mongo",
        needs=("pymongo",),
    ),
)
"""Schemes that are served from but not streamed into: results another sink wrote."""
SHELVES: Final = Registry(
    "shelf",
    Plugin(
        "shelf",
        "duckdb",
        "backbeat.sinks.duckdb.shelf:FileShelf",
        "files in the store's folder (shelf/<name>/)",
    ),
    Plugin(
        "shelf",
        "postgresql",
        "backbeat.sinks.postgres.shelf:PostgresShelf",
        "a table in the store's database",
        extra="postgres",
        needs=("psycopg", "psycopg_pool"),
    ),
)
"""Where each store keeps its shelf (``shelf.py``): trained models beside the results."""
ALIASES: Final = {"postgres": "postgresql"}
SINKS: Final = Registry(
    "sink",
    Plugin(
        "sink",
        "csv",
        "backbeat.sinks.csv:CsvSink",
        "--csv FILE: plays per genre per final minute, appended to one CSV file (exactly once)",
    ),
    Plugin(
        "sink",
        "mongo",
        "backbeat.sinks.mongo.sink:MongoSink",
        "plays per minute and song, artist and genre as MongoDB documents, full counts "
        "(--sink-option mongo.url=mongodb://...; exactly once)",
        extra="mongo",
        needs=("pymongo",),
    ),
    Plugin(
        "sink",
        "kafka-dlq",
        "backbeat.sinks.kafka_dlq:DeadLetterSink",
        "dead letters of Kafka records to <topic>.dlq, with the batch id (at least once)",
        extra="kafka",
        needs=("confluent_kafka",),
    ),
    Plugin(
        "sink",
        "lake",
        "backbeat.sinks.lake.sink:LakeSink",
        "--lake FOLDER|s3://bucket/prefix: the valid raw events as Parquet by topic and event "
        "hour, Hive-partitioned (--sink-option lake.endpoint=URL for MinIO; exactly once)",
    ),
)
_URL: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(location: str) -> str:
    """The store backend a ``--store`` location names (a plain folder: ``duckdb``).

    Raises:
        ConfigError: a URL whose scheme no store answers to.
    """
    match = _URL.match(location)
    if match is None:
        return "duckdb"
    scheme = match.group(1).lower()
    scheme = ALIASES.get(scheme, scheme)
    if scheme not in STORES and scheme not in READERS:
        raise ConfigError(
            f"unknown store {location.split('://')[0]!r}:// in --store {location!r}: give a "
            f"folder (the embedded DuckDB store) or a URL of: "
            + ", ".join(f"{name}://" for name in [*STORES, *READERS])
        )
    return scheme


def _store_class(location: str) -> type[Store]:
    scheme = scheme_of(location)
    if scheme in READERS:
        raise ConfigError(
            f"--store {scheme}:// holds what a result sink wrote: it can be served and "
            "queried, not streamed into; stream with a folder or a postgresql:// URL as the "
            "--store (and --sink to write there too)"
        )
    return cast(type[Store], STORES.load(scheme))


def open_store(location: str, *, shared: bool = False) -> Store:
    """The primary store at ``location``, for writing (created when new).

    ``shared``: several processes write it (members of one consumer group).

    Raises:
        ConfigError: an unknown scheme; MissingExtraError: its extra is not installed;
        StoreError / StoreLockedError: it cannot be opened.
    """
    return _store_class(location).at(location, shared=shared)


def open_reader(location: str, *, until_ready: bool = False) -> Reader:
    """Named queries over the store at ``location``, written by another process or idle.

    ``until_ready``: a store that holds no results yet (its first commit still to come) is
    not an error: the reader answers empty until then, and from the store after
    (``pending.py``; ``backbeat serve`` starting beside a new stream).

    Raises:
        ConfigError, MissingExtraError, StoreError: as :func:`open_store`; no store there
        (StoreNotReadyError: no results yet, unless ``until_ready``).
    """
    scheme = scheme_of(location)
    if scheme in READERS:
        return cast(Reader, READERS.load(scheme).reader_at(location))
    store = _store_class(location)
    try:
        return store.reader_at(location)
    except StoreNotReadyError as exc:
        if not until_ready:
            raise
        from backbeat.sinks.pending import PendingReader

        log.warning("%s (answering empty until then)", exc)
        return PendingReader(lambda: store.reader_at(location))


def open_shelf(location: str) -> Shelf:
    """The shelf beside the store at ``location`` (``shelf.py``), created when new.

    Raises:
        ConfigError: a store that keeps no shelf (``mongodb://``) or an unknown scheme;
        MissingExtraError; StoreError: it cannot be opened.
    """
    scheme = scheme_of(location)
    if scheme not in SHELVES:
        raise ConfigError(
            f"--store {scheme}:// keeps no models: give a folder or a postgresql:// URL"
        )
    return cast(Shelf, SHELVES.load(scheme).at(location))


def open_sinks(specs: Sequence[SinkSpec]) -> list[ResultSink]:
    """The result sinks the user chose, in order (each name once).

    Raises:
        ConfigError: an unknown or repeated name, or a bad option; MissingExtraError.
    """
    names = [spec.name for spec in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--sink {', '.join(repeated)} given more than once")
    return [cast(type[ResultSink], SINKS.load(spec.name)).from_spec(spec) for spec in specs]
