"""Read queries over a store: the one read interface of the CLI (and later the API).

Every function takes an optional event-time range (epoch ms, ``[start, end)`` on the window
start) and binds all values as parameters. They read merged partial aggregates, so they see
exactly what the engine committed, never engine internals.

Next: ``backbeat.sinks.duckdb_store`` (the tables), ``backbeat.cli`` (the caller).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from backbeat.analytics.metrics import BY_NAME, ENGAGEMENT_DIMENSIONS
from backbeat.errors import ConfigError
from backbeat.sinks.duckdb_store import DuckDBStore, merged_view


@dataclass(frozen=True, slots=True)
class TimeRange:
    """An event-time range on window starts, epoch ms; None = unbounded."""

    start: int | None = None
    end: int | None = None

    def where(self, column: str = "window_start", extra: str = "") -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if self.start is not None:
            clauses.append(f"{column} >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append(f"{column} < ?")
            params.append(self.end)
        if extra:
            clauses.append(extra)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _merged(name: str) -> str:
    return merged_view(BY_NAME[name])


def top_songs(store: DuckDBStore, span: TimeRange, limit: int = 10) -> pa.Table:
    where, params = span.where()
    return store.sql(
        f"SELECT artist, song, track_id, sum(plays)::BIGINT AS plays FROM {_merged('song_minute')} "
        f"{where} GROUP BY ALL ORDER BY plays DESC, artist, song LIMIT ?",
        (*params, limit),
    )


def top_artists(store: DuckDBStore, span: TimeRange, limit: int = 10) -> pa.Table:
    where, params = span.where()
    return store.sql(
        f"SELECT artist, sum(plays)::BIGINT AS plays FROM {_merged('artist_minute')} {where} "
        "GROUP BY ALL ORDER BY plays DESC, artist LIMIT ?",
        (*params, limit),
    )


def genre_windows(store: DuckDBStore, span: TimeRange, limit: int = 10_000) -> pa.Table:
    where, params = span.where()
    return store.sql(
        "SELECT make_timestamp(window_start * 1000) AS window_start, genre, plays "
        f"FROM {_merged('genre_minute')} {where} ORDER BY window_start, genre LIMIT ?",
        (*params, limit),
    )


def engagement(
    store: DuckDBStore, span: TimeRange, by: str = "genre", limit: int = 100
) -> pa.Table:
    if by not in ENGAGEMENT_DIMENSIONS:
        raise ConfigError(f"--by {by!r}: choose one of {', '.join(ENGAGEMENT_DIMENSIONS)}")
    where, params = span.where(extra="dimension = ?")
    return store.sql(
        "SELECT value AS " + by + ", sum(listens)::BIGINT AS listens, "
        "round(sum(completed) / sum(listens), 4) AS completion_rate, "
        "round(sum(skipped) / sum(listens), 4) AS skip_rate, "
        "round(sum(pct_sum) / sum(listens), 4)::DOUBLE AS avg_listened, "
        "round(sum(rating_sum) / nullif(sum(rating_count), 0), 3)::DOUBLE AS avg_rating "
        f"FROM {_merged('engagement_minute')} {where} GROUP BY ALL "
        "ORDER BY listens DESC LIMIT ?",
        (*params, by, limit),
    )


def active_users(store: DuckDBStore, span: TimeRange, limit: int = 10_000) -> pa.Table:
    where, params = span.where()
    return store.sql(
        "WITH u AS (SELECT window_start, count(*) AS users FROM "
        f"{_merged('user_minute')} {where} GROUP BY ALL), "
        "s AS (SELECT window_start, count(*) AS sessions FROM "
        f"{_merged('session_minute')} {where} GROUP BY ALL) "
        "SELECT make_timestamp(window_start * 1000) AS window_start, "
        "coalesce(users, 0) AS users, sessions FROM s LEFT JOIN u USING (window_start) "
        "ORDER BY window_start LIMIT ?",
        (*params, *params, limit),
    )


def dead_letters(store: DuckDBStore, limit: int = 100) -> pa.Table:
    return store.sql(
        'SELECT topic, partition, "offset", reason, '
        # A blob cast escapes bytes that are not UTF-8 (dead letters often hold such bytes).
        "CASE WHEN octet_length(raw) > 120 THEN substr(raw::VARCHAR, 1, 120) || '...' "
        "ELSE raw::VARCHAR END AS raw, received_at "
        'FROM dead_letters ORDER BY batch_id DESC, "offset" DESC LIMIT ?',
        (limit,),
    )
