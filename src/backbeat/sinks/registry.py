"""Stores by ``--store`` location and result sinks by ``--sink`` name, imported lazily.

A ``--store`` location is a folder (the embedded DuckDB store) or a URL whose scheme names the
backend (``duckdb://FOLDER``). The store holds the checkpoint and answers the reader. Result
sinks are added by name (``--sink csv --csv FILE``); each states its guarantee. Layers above
the sinks build backends only through these functions, never by importing one.

Next: ``base.py`` (the contracts), ``../plugins.py`` (the registry mechanics).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, cast

from backbeat.errors import ConfigError
from backbeat.plugins import Plugin, Registry
from backbeat.sinks.base import ResultSink, SinkSpec, Store
from backbeat.sinks.queries import Reader

STORES: Final = Registry(
    "store",
    Plugin(
        "store",
        "duckdb",
        "backbeat.sinks.duckdb.store:DuckDBStore",
        "one DuckDB file in a folder: results, dead letters and checkpoint (the default)",
    ),
)
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
        "kafka-dlq",
        "backbeat.sinks.kafka_dlq:DeadLetterSink",
        "dead letters of Kafka records to <topic>.dlq, with the batch id (at least once)",
        extra="kafka",
        needs=("confluent_kafka",),
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
    if scheme not in STORES:
        raise ConfigError(
            f"unknown store {location.split('://')[0]!r}:// in --store {location!r}: give a "
            f"folder (the embedded DuckDB store) or a URL of: "
            + ", ".join(f"{name}://" for name in STORES)
        )
    return scheme


def _store_class(location: str) -> type[Store]:
    return cast(type[Store], STORES.load(scheme_of(location)))


def open_store(location: str, *, shared: bool = False) -> Store:
    """The primary store at ``location``, for writing (created when new).

    ``shared``: several processes write it (members of one consumer group).

    Raises:
        ConfigError: an unknown scheme; MissingExtraError: its extra is not installed;
        StoreError / StoreLockedError: it cannot be opened.
    """
    return _store_class(location).at(location, shared=shared)


def open_reader(location: str) -> Reader:
    """Named queries over the store at ``location``, written by another process or idle.

    Raises:
        ConfigError, MissingExtraError, StoreError: as :func:`open_store`; no store there.
    """
    return _store_class(location).reader_at(location)


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
