"""Parameters the routes share (windows, limits, listen filters, listener and track ids) and
Arrow -> JSON helpers.

Next: the routers of this package.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import pyarrow as pa
from fastapi import Depends, Path, Query

from backbeat.sinks.queries import ListenFilter, TimeRange

WINDOW_PATTERN = r"^(all|[1-9][0-9]{0,3}[mhd])$"
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}

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


def ms(value: int | None) -> datetime | None:
    """Epoch ms as an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


def epoch_ms(value: datetime | None) -> int | None:
    """A datetime (naive = UTC) as epoch ms."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def rows(table: pa.Table, times: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Arrow rows as dicts; ``times`` columns (epoch ms, or naive UTC timestamps) -> UTC."""
    out: list[dict[str, Any]] = table.to_pylist()
    for row in out:
        for col in times:
            value = row[col]
            row[col] = ms(value) if isinstance(value, int) else value.replace(tzinfo=UTC)
    return out


UserId = Annotated[
    int, Path(ge=-(2**62), le=2**62, description="The listener's id (``user_id`` of events).")
]
TrackKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="A track's key (``track`` of an answer) or a ``spotify:track:`` URI.",
    ),
]
