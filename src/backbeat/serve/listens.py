"""Read queries over the raw listen events a store keeps: the live table and filtered lists.

The engine stores every fresh listen event with the batch that committed it (table
``listens``), so the API can show the latest events, filter them by any attribute and rank
songs or artists within a filter, all exactly as committed. Filters are bound parameters;
the artist filter is a case-insensitive substring.

Next: ``queries.py`` (the aggregates), ``api.py`` (the routes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow as pa

from backbeat.serve.queries import TimeRange
from backbeat.serve.reader import Reader

EVENT_COLUMNS = (
    "ts", "user_id", "level", "gender", "state", "artist", "song", "genre", "platform",
    "country", "mood", "listen_pct", "skipped", "rating",
)  # fmt: skip

_EQUAL = ("genre", "platform", "country", "mood", "level")


@dataclass(frozen=True, slots=True)
class ListenFilter:
    """Which listen events to keep; None = any."""

    artist: str | None = None
    genre: str | None = None
    platform: str | None = None
    country: str | None = None
    mood: str | None = None
    level: str | None = None
    min_rating: float | None = None
    skipped: bool | None = None

    @property
    def empty(self) -> bool:
        return all(value is None for value in asdict(self).values())

    def clauses(self) -> tuple[list[str], list[object]]:
        """SQL conditions (AND-ed by the caller) and their parameters."""
        clauses: list[str] = []
        params: list[object] = []
        if self.artist:
            clauses.append("contains(lower(artist), lower(?))")
            params.append(self.artist)
        for name in _EQUAL:
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{name} = ?")
                params.append(value)
        if self.min_rating is not None:
            clauses.append("rating >= ?")
            params.append(self.min_rating)
        if self.skipped is not None:
            clauses.append("skipped = ?")
            params.append(self.skipped)
        return clauses, params


def _where(
    span: TimeRange, keep: ListenFilter, extra: str = "", extra_params: tuple[object, ...] = ()
) -> tuple[str, list[object]]:
    clauses, params = keep.clauses()
    where, span_params = span.where("ts", " AND ".join(clauses + ([extra] if extra else [])))
    return where, [*span_params, *params, *extra_params]


def latest(
    store: Reader,
    keep: ListenFilter,
    limit: int = 50,
    batches: tuple[int, int] | None = None,
) -> pa.Table:
    """The newest listen events (by event time) passing ``keep``; ``batches = (after, upto)``
    keeps only events committed by batches ``after < id <= upto``."""
    where, params = (
        _where(TimeRange(), keep)
        if batches is None
        else _where(TimeRange(), keep, "batch_id > ? AND batch_id <= ?", batches)
    )
    return store.sql(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM listens {where} "
        "ORDER BY ts DESC, session_id, item LIMIT ?",  # (session, item) is unique: no ties
        (*params, limit),
    )


def top(store: Reader, by: str, span: TimeRange, keep: ListenFilter, limit: int) -> pa.Table:
    """Plays per song (``by="song"``) or per artist within ``keep``."""
    keys = "artist, song, track_id" if by == "song" else "artist"
    where, params = _where(span, keep)
    return store.sql(
        f"SELECT {keys}, count(*)::BIGINT AS plays FROM listens {where} "
        f"GROUP BY ALL ORDER BY plays DESC, {keys} LIMIT ?",
        (*params, limit),
    )


def genders(store: Reader, span: TimeRange) -> pa.Table:
    """Listens per listener gender (guests have none)."""
    where, params = span.where("ts", "gender IS NOT NULL")
    return store.sql(
        f"SELECT gender, count(*)::BIGINT AS listens FROM listens {where} "
        "GROUP BY ALL ORDER BY listens DESC, gender",
        tuple(params),
    )


def filter_values(store: Reader) -> dict[str, list[str]]:
    """The values each select filter can take, as seen in the data."""
    rows = store.sql(
        "SELECT DISTINCT dimension, value FROM m_engagement_minute ORDER BY ALL"
    ).to_pylist()
    values: dict[str, list[str]] = {name: [] for name in ("genre", "platform", "country", "mood")}
    for row in rows:
        values.setdefault(row["dimension"], []).append(row["value"])
    return values
