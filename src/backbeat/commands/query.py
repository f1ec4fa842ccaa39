"""``backbeat query``: one of the store's named queries, as a table or JSON.

``dead-letters`` shows two: the dead letters counted by topic and reason, then the latest ones
with each raw record as it arrived (:func:`printable`: text as written, bytes that are not
UTF-8 and control characters as escapes, so nothing in a record can move the terminal).

Next: ``backbeat.sinks.queries`` (the queries), ``backbeat.sinks.registry`` (the reader).
"""

from __future__ import annotations

import codecs
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import pyarrow as pa
import typer

from backbeat.commands.common import (
    emit_table,
    emit_tables,
    guard,
    parse_time,
    settings,
    store_option,
)
from backbeat.commands.stream import StoreOption
from backbeat.commands.warehouse import (
    LakeOptions,
    WarehouseOption,
    WarehouseOptions,
    open_warehouse,
)
from backbeat.ui.text import visible

if TYPE_CHECKING:
    from backbeat.sinks.queries import TimeRange
    from backbeat.warehouse.catalog import Warehouse


class QueryName(StrEnum):
    TOP_SONGS = "top-songs"
    TOP_ARTISTS = "top-artists"
    TOP_SKIPPED = "top-skipped"
    GENRE_WINDOWS = "genre-windows"
    ENGAGEMENT = "engagement"
    ACTIVE_USERS = "active-users"
    LISTENING_TIME = "listening-time"
    DEAD_LETTERS = "dead-letters"
    WAREHOUSE = "warehouse"


def query(
    name: Annotated[QueryName, typer.Argument(help="What to show.")],
    asked_of_warehouse: Annotated[
        str | None,
        typer.Argument(
            metavar="[WAREHOUSE_QUERY]",
            help="After 'warehouse': top-songs|top-artists|active-users|demographics|locations.",
        ),
    ] = None,
    store: StoreOption = None,
    from_: Annotated[str | None, typer.Option("--from", help="Event-time start, ISO.")] = None,
    to: Annotated[str | None, typer.Option(help="Event-time end (exclusive), ISO.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Rows at most.")] = 10,
    by: Annotated[
        str | None,
        typer.Option(
            help="engagement: genre|platform|country|mood (genre); top-skipped: song|artist (song)."
        ),
    ] = None,
    min_plays: Annotated[
        int, typer.Option(min=1, help="top-skipped: only items with this many listens or more.")
    ] = 20,
    lake: Annotated[str | None, typer.Option(help="warehouse: the lake it loads from.")] = None,
    warehouse: WarehouseOption = None,
    as_of: Annotated[
        str | None, typer.Option(help="warehouse: a snapshot id or an ISO time (time travel).")
    ] = None,
    lake_option: LakeOptions = None,
    warehouse_option: WarehouseOptions = None,
) -> None:
    """Query the results in a store, or the Iceberg warehouse (``query warehouse top-songs``)."""
    from backbeat.errors import ConfigError
    from backbeat.sinks import queries as q
    from backbeat.sinks.registry import open_reader

    def body() -> None:
        start, end = parse_time(from_, "--from"), parse_time(to, "--to")
        span = q.TimeRange(
            int(start.timestamp() * 1000) if start else None,
            int(end.timestamp() * 1000) if end else None,
        )
        if (name is QueryName.WAREHOUSE) != (asked_of_warehouse is not None):
            raise ConfigError(
                "name a warehouse query after 'warehouse' (e.g. query warehouse top-songs), "
                "and only there"
            )
        if asked_of_warehouse is None and (lake or warehouse or as_of):
            raise ConfigError("--lake, --warehouse and --as-of go with: query warehouse ...")
        if asked_of_warehouse is not None:
            _warehouse(asked_of_warehouse, span, as_of, limit,
                       open_warehouse(lake, lake_option, warehouse, warehouse_option))  # fmt: skip
            return
        asked: q.Query
        match name:
            case QueryName.TOP_SONGS:
                asked = q.TopSongs(span=span, limit=limit)
            case QueryName.TOP_ARTISTS:
                asked = q.TopArtists(span=span, limit=limit)
            case QueryName.GENRE_WINDOWS:
                asked = q.GenreWindows(span=span, limit=limit)
            case QueryName.TOP_SKIPPED | QueryName.ENGAGEMENT:
                try:
                    asked = (
                        q.TopSkipped(span=span, limit=limit, min_plays=min_plays, by=by or "song")
                        if name is QueryName.TOP_SKIPPED
                        else q.Engagement(span=span, by=by or "genre", limit=limit)
                    )
                except ValueError as exc:
                    raise ConfigError(f"--{exc}") from None
            case QueryName.ACTIVE_USERS:
                asked = q.ActiveUsers(span=span, limit=limit)
            case QueryName.LISTENING_TIME:
                asked = q.ListeningTime(span=span, limit=limit)
            case QueryName.DEAD_LETTERS | QueryName.WAREHOUSE:
                asked = q.DeadLetters(limit=limit)
        reader = open_reader(store_option(store) or settings().store)
        try:
            table = reader.run(asked)
            counts = reader.run(q.DeadLetterCounts()) if isinstance(asked, q.DeadLetters) else None
        finally:
            reader.close()
        if counts is not None:
            emit_tables(
                {
                    "counts": (counts, "dead letters by topic and reason"),
                    "latest": (_readable(table), f"latest dead letters (up to {limit:,})"),
                }
            )
            return
        if name is QueryName.GENRE_WINDOWS:
            table = table.drop_columns(["open_from"])
        emit_table(table, name.value)

    guard(body)


def _warehouse(asked: str, span: TimeRange, as_of: str | None, limit: int, wh: Warehouse) -> None:
    from backbeat.errors import ConfigError
    from backbeat.warehouse.reader import WarehouseQuery, ask

    try:
        which = WarehouseQuery(asked)
    except ValueError:
        known = ", ".join(q.value for q in WarehouseQuery)
        raise ConfigError(f"no warehouse query {asked!r} (choose from {known})") from None
    table = ask(wh, which, span.start, span.end, as_of, limit)
    emit_table(table, f"warehouse {which.value}" + (f" as of {as_of}" if as_of else ""))


def printable(raw: bytes, whole: bool = True) -> str:
    """``raw`` as text for a terminal: UTF-8 as written; bytes that are not UTF-8 as ``\\xff``;
    control and invisible characters (C0, DEL, C1, zero-width, bidi overrides, line
    separators) as ``\\t``, ``\\x1b``, ``\\u202e`` (:func:`backbeat.ui.text.visible`).
    ``whole=False``: ``raw`` was cut, so an incomplete character at its end is left out rather
    than shown as bytes."""
    return visible(
        codecs.getincrementaldecoder("utf-8")("backslashreplace").decode(raw, final=whole)
    )


def _readable(latest: pa.Table) -> pa.Table:
    """The latest dead letters with ``raw`` as printable text (marked when cut)."""
    shown = [
        printable(raw, whole=len(raw) == size)
        + ("" if len(raw) == size else f"... ({size:,} bytes in all)")
        for raw, size in zip(
            latest.column("raw").to_pylist(), latest.column("raw_bytes").to_pylist(), strict=True
        )
    ]
    return latest.set_column(
        latest.schema.get_field_index("raw"), "raw", pa.array(shown, pa.string())
    )
