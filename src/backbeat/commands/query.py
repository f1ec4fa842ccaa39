"""``backbeat query``: one of the store's named queries, as a table or JSON.

Next: ``backbeat.sinks.queries`` (the queries), ``backbeat.sinks.registry`` (the reader).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from backbeat.commands.common import emit_table, guard, parse_time, settings
from backbeat.commands.stream import StoreOption


class QueryName(StrEnum):
    TOP_SONGS = "top-songs"
    TOP_ARTISTS = "top-artists"
    GENRE_WINDOWS = "genre-windows"
    ENGAGEMENT = "engagement"
    ACTIVE_USERS = "active-users"
    LISTENING_TIME = "listening-time"
    DEAD_LETTERS = "dead-letters"


def query(
    name: Annotated[QueryName, typer.Argument(help="What to show.")],
    store: StoreOption = None,
    from_: Annotated[str | None, typer.Option("--from", help="Event-time start, ISO.")] = None,
    to: Annotated[str | None, typer.Option(help="Event-time end (exclusive), ISO.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Rows at most.")] = 10,
    by: Annotated[str, typer.Option(help="engagement: genre|platform|country|mood.")] = "genre",
) -> None:
    """Query the results in a store."""
    from backbeat.errors import ConfigError
    from backbeat.sinks import queries as q
    from backbeat.sinks.registry import open_reader

    def body() -> None:
        start, end = parse_time(from_, "--from"), parse_time(to, "--to")
        span = q.TimeRange(
            int(start.timestamp() * 1000) if start else None,
            int(end.timestamp() * 1000) if end else None,
        )
        asked: q.Query
        match name:
            case QueryName.TOP_SONGS:
                asked = q.TopSongs(span=span, limit=limit)
            case QueryName.TOP_ARTISTS:
                asked = q.TopArtists(span=span, limit=limit)
            case QueryName.GENRE_WINDOWS:
                asked = q.GenreWindows(span=span, limit=limit)
            case QueryName.ENGAGEMENT:
                try:
                    asked = q.Engagement(span=span, by=by, limit=limit)
                except ValueError as exc:
                    raise ConfigError(f"--{exc}") from None
            case QueryName.ACTIVE_USERS:
                asked = q.ActiveUsers(span=span, limit=limit)
            case QueryName.LISTENING_TIME:
                asked = q.ListeningTime(span=span, limit=limit)
            case QueryName.DEAD_LETTERS:
                asked = q.DeadLetters(limit=limit)
        reader = open_reader(store or settings().store)
        try:
            table = reader.run(asked)
        finally:
            reader.close()
        if name is QueryName.GENRE_WINDOWS:
            table = table.drop_columns(["open_from"])
        emit_table(table, name.value)

    guard(body)
