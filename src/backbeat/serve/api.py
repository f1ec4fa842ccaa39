"""The REST API and the live push: FastAPI routes over a store's read interface.

Every route reads through a :class:`~backbeat.serve.reader.Reader` (never engine internals),
binds every filter as a parameter and answers with a pydantic model, so ``/docs`` documents
it. Windows (``5m``, ``1h``, ``24h``, ``all``...) end with the minute of the store's latest
event, so replayed history reads the same as a live stream. Bad parameters get a 422 with
the reason; a store that cannot answer gets a 503. ``/api/stream`` pushes one Server-Sent
Event per committed batch (new totals and the new events matching the client's filters).

Next: ``app.py`` (assembling this with auth, cache and the dashboard), ``queries.py``,
``listens.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from backbeat.analytics.metrics import ENGAGEMENT_DIMENSIONS
from backbeat.errors import BackbeatError
from backbeat.serve import listens, models, queries
from backbeat.serve.cache import Flights
from backbeat.serve.hub import CommitHub
from backbeat.serve.listens import ListenFilter
from backbeat.serve.queries import TimeRange
from backbeat.serve.reader import Reader

log = logging.getLogger(__name__)

T = TypeVar("T")

WINDOW_PATTERN = r"^(all|[1-9][0-9]{0,3}[mhd])$"
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
KEEPALIVE_S = 15.0

Window = Annotated[
    str,
    Query(
        pattern=WINDOW_PATTERN,
        description="Event-time window ending with the latest minute: 5m, 1h, 24h, 7d... or all.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows at most.")]
Text = Annotated[str | None, Query(min_length=1, max_length=200)]


def span_of(window: str) -> TimeRange:
    """``"1h"`` -> the last 60 one-minute windows; ``"all"`` -> everything."""
    if window == "all":
        return TimeRange()
    return TimeRange(last=int(window[:-1]) * _UNIT_MS[window[-1]])


def listen_filter(
    artist: Annotated[str | None, Query(max_length=200, description="Substring, any case.")] = None,
    genre: Text = None,
    platform: Text = None,
    country: Text = None,
    mood: Text = None,
    level: Text = None,
    min_rating: Annotated[float | None, Query(ge=0, le=5)] = None,
    skipped: bool | None = None,
) -> ListenFilter:
    return ListenFilter(
        artist=artist or None,
        genre=genre,
        platform=platform,
        country=country,
        mood=mood,
        level=level,
        min_rating=min_rating,
        skipped=skipped,
    )


Keep = Annotated[ListenFilter, Depends(listen_filter)]


def _ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


def _rows(table: pa.Table, times: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Arrow rows as dicts; ``times`` columns (epoch ms, or naive UTC timestamps) -> UTC."""
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        for col in times:
            value = row[col]
            row[col] = _ms(value) if isinstance(value, int) else value.replace(tzinfo=UTC)
    return rows


def _events(table: pa.Table) -> list[models.ListenEvent]:
    return [models.ListenEvent(**row) for row in _rows(table, ("ts",))]


def summary_model(reader: Reader) -> models.Summary:
    row = queries.summary(reader)
    as_of = row.pop("as_of")
    return models.Summary(as_of=_ms(as_of), **row)


def build_router(reader: Reader, hub: CommitHub) -> APIRouter:
    """The ``/api`` routes, ``/health`` and ``/metrics`` over ``reader``."""
    router = APIRouter()
    flights: Flights[bytes] = Flights()

    def ranking(by: str, keep: ListenFilter, window: str, limit: int) -> list[dict[str, Any]]:
        """Plays per song or artist: the stored aggregates, or the kept listens if filtered."""
        span = span_of(window)
        if not keep.empty:
            return _rows(listens.top(reader, by, span, keep, limit))
        top = queries.top_songs if by == "song" else queries.top_artists
        return _rows(top(reader, span, limit))

    @router.get("/api/top-songs", tags=["rankings"])
    def top_songs(keep: Keep, window: Window = "1h", limit: Limit = 10) -> models.TopSongs:
        """The most played songs (seed endpoint), optionally within genre/platform/country/level."""
        rows = ranking("song", keep, window, limit)
        return models.TopSongs(window=window, items=[models.Song(**r) for r in rows])

    @router.get("/api/top-artists", tags=["rankings"])
    def top_artists(keep: Keep, window: Window = "1h", limit: Limit = 10) -> models.TopArtists:
        """The most played artists (seed endpoint), optionally filtered like top songs."""
        rows = ranking("artist", keep, window, limit)
        return models.TopArtists(window=window, items=[models.Artist(**r) for r in rows])

    @router.get("/api/genres/windows", tags=["windows"])
    def genre_windows(
        from_: Annotated[datetime | None, Query(alias="from")] = None,
        to: datetime | None = None,
    ) -> models.GenreWindows:
        """Plays per genre per 1-minute event-time window (default: the last 30 minutes)."""
        if from_ is None and to is None:
            span = TimeRange(last=30 * 60_000)
        else:
            span = TimeRange(_epoch_ms(from_), _epoch_ms(to))
        table = queries.genre_windows(reader, span)
        open_from = _ms(table.column("open_from")[0].as_py()) if table.num_rows else None
        rows = _rows(table.drop_columns(["open_from"]), ("window_start",))
        return models.GenreWindows(
            items=[models.GenreMinute(**r) for r in rows], open_from=open_from
        )

    @router.get("/api/engagement", tags=["engagement"])
    def engagement(
        by: Annotated[str, Query(pattern="^(" + "|".join(ENGAGEMENT_DIMENSIONS) + ")$")] = "genre",
        window: Window = "1h",
        limit: Limit = 100,
    ) -> models.Engagement:
        """Completion and skip rate, mean share listened and mean rating per dimension value."""
        table = queries.engagement(reader, span_of(window), by, limit).rename_columns(
            ["value", "listens", "completion_rate", "skip_rate", "avg_listened", "avg_rating"]
        )
        rows = [models.EngagementRow(**r) for r in _rows(table)]
        return models.Engagement(by=by, items=rows)

    @router.get("/api/users/active", tags=["audience"])
    def active_users(window: Window = "1h") -> models.ActiveUsers:
        """Distinct users and sessions per minute."""
        rows = _rows(queries.active_users(reader, span_of(window)), ("window_start",))
        return models.ActiveUsers(items=[models.ActiveMinute(**r) for r in rows])

    @router.get("/api/pages", tags=["audience"])
    def pages(window: Window = "1h", limit: Limit = 100) -> models.Pages:
        """Page views per page."""
        rows = _rows(queries.pages(reader, span_of(window), limit))
        return models.Pages(items=[models.PageRow(**r) for r in rows])

    @router.get("/api/auth", tags=["audience"])
    def auth(window: Window = "1h") -> models.Auth:
        """Login attempts and successes: totals and per minute."""
        rows = _rows(queries.auth_minutes(reader, span_of(window)), ("window_start",))
        attempts = sum(r["attempts"] for r in rows)
        successes = sum(r["successes"] for r in rows)
        return models.Auth(
            attempts=attempts,
            successes=successes,
            success_rate=successes / attempts if attempts else None,
            items=[models.AuthMinute(**r) for r in rows],
        )

    @router.get("/api/levels", tags=["audience"])
    def levels(window: Window = "1h") -> models.Levels:
        """Listens by subscription level and by gender; upgrades and downgrades."""
        span = span_of(window)
        return models.Levels(
            levels=[models.LevelRow(**r) for r in _rows(queries.levels(reader, span))],
            genders=[models.GenderRow(**r) for r in _rows(listens.genders(reader, span))],
            changes=[models.LevelChange(**r) for r in _rows(queries.level_changes(reader, span))],
        )

    @router.get("/api/geo/states", tags=["audience"])
    def geo_states(window: Window = "1h", limit: Limit = 60) -> models.States:
        """Listens per US state, most first."""
        rows = _rows(queries.states(reader, span_of(window), limit))
        return models.States(items=[models.StateRow(**r) for r in rows])

    @router.get("/api/activity/hourly", tags=["windows"])
    def hourly() -> models.Hourly:
        """Plays per hour of the latest event's UTC day next to the day before."""
        per: dict[int, list[int]] = {hour: [0, 0] for hour in range(24)}
        for row in _rows(queries.hourly_plays(reader)):
            per[row["hour"]][row["day"]] = row["plays"]
        as_of = _ms(queries.latest_ts(reader))  # the day the query called today
        today: date | None = as_of.date() if as_of else None
        items = [models.HourRow(hour=h, today=t, yesterday=y) for h, (t, y) in per.items()]
        return models.Hourly(today=today, items=items)

    @router.get("/api/filters", tags=["events"])
    def filters() -> models.Filters:
        """The values the dashboard's select filters can take."""
        return models.Filters(**listens.filter_values(reader))

    @router.get("/api/events", tags=["events"])
    def events(keep: Keep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> models.Events:
        """The latest listen events (event time, newest first) matching the filters."""
        return models.Events(items=_events(listens.latest(reader, keep, limit)))

    @router.get("/api/summary", tags=["live"])
    def summary() -> models.Summary:
        """Headline figures: streams this hour vs the last, active users, paid share..."""
        return summary_model(reader)

    async def cached(key: tuple[object, ...], version: int, make: Callable[[], bytes]) -> bytes:
        async def compute() -> bytes:
            return await asyncio.to_thread(make)

        return await flights.get(key, version, compute)

    async def update(version: int, keep: ListenFilter, since: int | None) -> str:
        summary = cached(
            ("summary",), version, lambda: summary_model(reader).model_dump_json().encode()
        )
        if since is None:
            summary_json, events_json = await summary, b"[]"
        else:
            batches = (since, version)

            def new_events() -> bytes:
                table = listens.latest(reader, keep, 50, batches)
                return json.dumps(
                    [e.model_dump(mode="json") for e in _events(table)], separators=(",", ":")
                ).encode()

            # Two queries on two cursors at once: the update waits for the slower one only.
            summary_json, events_json = await asyncio.gather(
                summary, cached(("events", keep, batches), version, new_events)
            )
        data = b'{"batch_id":%d,"summary":%s,"events":%s}' % (version, summary_json, events_json)
        return f"event: update\ndata: {data.decode()}\n\n"

    @router.get(
        "/api/stream",
        tags=["live"],
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-Sent Events: one `update` (an Update object as JSON) "
                "at connect and after every committed batch, a `store-error` ({error}) when "
                "the store cannot answer (retried at the next commit); comments keep the "
                "line alive.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def stream(request: Request, keep: Keep) -> StreamingResponse:
        """Live updates pushed after each committed micro-batch (filters as /api/events)."""

        async def updates() -> AsyncIterator[str]:
            # The response has started: a store that cannot answer is reported in the
            # stream (`event: store-error`; a plain `error` would look like a lost connection
            # to EventSource) and the same batches are tried again at the next commit.
            seen = hub.version
            try:
                yield await update(seen, keep, None)
            except BackbeatError as exc:
                yield _error_event(exc)
            while not await request.is_disconnected():
                version = await hub.wait_newer(seen, KEEPALIVE_S)
                if version == seen:
                    yield ": keep-alive\n\n"
                    continue
                try:
                    yield await update(version, keep, seen)
                except BackbeatError as exc:
                    yield _error_event(exc)
                    continue
                seen = version

        return StreamingResponse(
            updates(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    @router.get("/health", tags=["ops"], responses={503: {"model": models.ErrorBody}})
    def health() -> models.Health:
        """Is the store reachable, and how old is its last commit (seconds)?"""
        totals = queries.batch_totals(reader)
        return models.Health(
            status="ok",
            batch_id=int(totals["batch_id"]),
            last_commit_age_s=totals["last_commit_age_s"],
        )

    @router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> str:
        """Prometheus text format: events in, dead letters, batch latency, events/s."""
        return prometheus(queries.batch_totals(reader))

    return router


def _error_event(exc: BackbeatError) -> str:
    log.warning("live update failed: %s", exc)
    return f"event: store-error\ndata: {json.dumps({'error': str(exc)})}\n\n"


def _epoch_ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


_COUNTERS = (
    ("events_in", "Events read from the source."),
    ("accepted", "Events accepted (valid, on time, not duplicates)."),
    ("duplicates", "Events dropped as duplicates."),
    ("late", "Events later than the allowed lateness (dead letters)."),
    ("dead", "Dead letters (malformed, out of contract or late)."),
    ("batches", "Committed micro-batches."),
)


def prometheus(totals: dict[str, Any]) -> str:
    """The store's counters as Prometheus text exposition."""
    lines: list[str] = []
    for name, help_text in _COUNTERS:
        metric = f"backbeat_{name}_total"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        lines.append(f"{metric} {int(totals[name])}")
    lines += [
        "# HELP backbeat_events_per_second Events committed per second over the last 10 s.",
        "# TYPE backbeat_events_per_second gauge",
        f"backbeat_events_per_second {float(totals['events_per_second'] or 0):.3f}",
        "# HELP backbeat_batch_seconds Micro-batch latency (last 100 batches).",
        "# TYPE backbeat_batch_seconds summary",
    ]
    quantiles = totals["batch_seconds"] or []
    for q, value in zip(("0.5", "0.9", "0.99"), quantiles, strict=False):
        lines.append(f'backbeat_batch_seconds{{quantile="{q}"}} {value:.6f}')
    age = totals["last_commit_age_s"]
    lines += [
        "# HELP backbeat_last_commit_age_seconds Seconds since the last commit.",
        "# TYPE backbeat_last_commit_age_seconds gauge",
        f"backbeat_last_commit_age_seconds {float(age) if age is not None else float('nan')}",
    ]
    return "\n".join(lines) + "\n"
