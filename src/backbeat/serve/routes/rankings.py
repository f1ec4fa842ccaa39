"""Routes of what is played: top songs, artists and skipped, genre windows, engagement, hourly activity.

Next: ``params.py``, ``audience.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from backbeat.analytics.metrics import ENGAGEMENT_DIMENSIONS
from backbeat.serve import models
from backbeat.serve.hub import CommitHub
from backbeat.serve.routes.needs import answers, needs, require_filter
from backbeat.serve.routes.params import Keep, Limit, Window, epoch_ms, ms, rows, span_of
from backbeat.sinks import queries as q


def router(reader: q.Reader, hub: CommitHub) -> APIRouter:
    api = APIRouter()

    @api.get("/api/top-songs", tags=["rankings"], **needs(reader, q.TopSongs))
    def top_songs(keep: Keep, window: Window = "1h", limit: Limit = 10) -> models.TopSongs:
        """The most played songs (seed endpoint), optionally within genre/platform/country/level
        (a store without raw listens answers 501 to a filter)."""
        require_filter(reader, q.TopSongs, keep)
        found = reader.run(q.TopSongs(span=span_of(window), limit=limit, keep=keep))
        return models.TopSongs(window=window, items=[models.Song(**r) for r in rows(found)])

    @api.get("/api/top-artists", tags=["rankings"], **needs(reader, q.TopArtists))
    def top_artists(keep: Keep, window: Window = "1h", limit: Limit = 10) -> models.TopArtists:
        """The most played artists (seed endpoint), optionally filtered like top songs."""
        require_filter(reader, q.TopArtists, keep)
        found = reader.run(q.TopArtists(span=span_of(window), limit=limit, keep=keep))
        return models.TopArtists(window=window, items=[models.Artist(**r) for r in rows(found)])

    @api.get("/api/top-skipped", tags=["rankings"], **needs(reader, q.TopSkipped))
    def top_skipped(
        keep: Keep,
        window: Window = "1h",
        limit: Limit = 10,
        min_plays: Annotated[
            int, Query(ge=1, le=10**9, description="Only items with at least this many listens.")
        ] = 20,
        by: Annotated[str, Query(pattern="^(" + "|".join(q.SKIPPED_BY) + ")$")] = "song",
    ) -> models.TopSkipped:
        """The songs (or artists, ``by=artist``) people skip most: highest skip rate first,
        then most listens; ``min_plays`` keeps one skip of a rare song off the top. Filtered
        like top songs."""
        require_filter(reader, q.TopSkipped, keep)
        asked = q.TopSkipped(span=span_of(window), limit=limit, min_plays=min_plays, by=by,
                             keep=keep)  # fmt: skip
        items = [models.Skipped(**r) for r in rows(reader.run(asked))]
        return models.TopSkipped(window=window, by=by, min_plays=min_plays, items=items)

    @api.get("/api/genres/windows", tags=["windows"], **needs(reader, q.GenreWindows))
    def genre_windows(
        from_: Annotated[datetime | None, Query(alias="from")] = None,
        to: datetime | None = None,
    ) -> models.GenreWindows:
        """Plays per genre per 1-minute event-time window (default: the last 30 minutes)."""
        if from_ is None and to is None:
            span = q.TimeRange(last=30 * 60_000)
        else:
            span = q.TimeRange(epoch_ms(from_), epoch_ms(to))
        table = reader.run(q.GenreWindows(span=span))
        open_from = ms(table.column("open_from")[0].as_py()) if table.num_rows else None
        items = rows(table.drop_columns(["open_from"]), ("window_start",))
        return models.GenreWindows(
            items=[models.GenreMinute(**r) for r in items], open_from=open_from
        )

    @api.get("/api/engagement", tags=["engagement"], **needs(reader, q.Engagement))
    def engagement(
        by: Annotated[str, Query(pattern="^(" + "|".join(ENGAGEMENT_DIMENSIONS) + ")$")] = "genre",
        window: Window = "1h",
        limit: Limit = 100,
    ) -> models.Engagement:
        """Completion and skip rate, mean share listened and mean rating per dimension value."""
        table = reader.run(q.Engagement(span=span_of(window), by=by, limit=limit))
        table = table.rename_columns(
            ["value", "listens", "completion_rate", "skip_rate", "avg_listened", "avg_rating"]
        )
        return models.Engagement(by=by, items=[models.EngagementRow(**r) for r in rows(table)])

    @api.get(
        "/api/activity/hourly",
        tags=["windows"],
        **needs(reader, q.HourlyPlays, optional=(q.LatestTime,)),
    )
    def hourly() -> models.Hourly:
        """Plays per hour of the latest event's UTC day next to the day before (``today``:
        null when the store does not say when its latest event was)."""
        per: dict[int, list[int]] = {hour: [0, 0] for hour in range(24)}
        for row in rows(reader.run(q.HourlyPlays())):
            per[row["hour"]][row["day"]] = row["plays"]
        as_of = ms(reader.one(q.LatestTime()).get("t")) if answers(reader, q.LatestTime) else None
        today: date | None = as_of.date() if as_of else None
        items = [models.HourRow(hour=h, today=t, yesterday=y) for h, (t, y) in per.items()]
        return models.Hourly(today=today, items=items)

    return api
