"""Read queries over a store's aggregates: what the CLI, the terminal view and the API show.

Every function takes an event-time range (epoch ms on the window start: absolute
``[start, end)``, or the ``last`` N ms ending with the minute of the store's latest event)
and binds all values as parameters. They read merged partial aggregates, so they see exactly
what the engine committed, never engine internals; a query that sums anyway sums the stored
partial rows directly (the same sums, without merging the whole history first).

Next: ``listens.py`` (reads of the raw listen events), ``backbeat.sinks.duckdb_store`` (the
tables), ``api.py`` and ``backbeat.cli`` (the callers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from backbeat.analytics.metrics import BY_NAME, ENGAGEMENT_DIMENSIONS
from backbeat.errors import ConfigError
from backbeat.events.schema import Topic
from backbeat.serve.reader import Reader
from backbeat.sinks.duckdb_store import merged_view, partial_rows

# The first millisecond of the minute of the store's latest event (NULL for an empty store).
LATEST_TS: Final = "(SELECT max(max_ts) FROM meta_partitions)"  # the latest event, epoch ms
LATEST_MINUTE: Final = f"({LATEST_TS} // 60000 * 60000)"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """An event-time range on window starts, epoch ms; None = unbounded.

    ``last``: only the last ``last`` ms of windows, up to and including the minute of the
    store's latest event (``last=3_600_000``: the latest minute and the 59 before it).
    """

    start: int | None = None
    end: int | None = None
    last: int | None = None

    def where(self, column: str = "window_start", extra: str = "") -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if self.last is not None:
            clauses.append(f"{column} >= {LATEST_MINUTE} - ?")
            params.append(self.last - 60_000)
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


def _summed(name: str) -> str:
    """Partial rows to sum again: cheaper than the merged view when a query sums anyway."""
    return partial_rows(BY_NAME[name])


def top_songs(store: Reader, span: TimeRange, limit: int = 10) -> pa.Table:
    where, params = span.where()
    return store.sql(
        f"SELECT artist, song, track_id, sum(plays)::BIGINT AS plays FROM {_summed('song_minute')} "
        f"{where} GROUP BY ALL ORDER BY plays DESC, artist, song LIMIT ?",
        (*params, limit),
    )


def top_artists(store: Reader, span: TimeRange, limit: int = 10) -> pa.Table:
    return _ranked("artist_minute", "artist", "plays", store, span, limit)


def genre_windows(store: Reader, span: TimeRange, limit: int = 10_000) -> pa.Table:
    """Plays per genre per minute, and (column ``open_from``, the same on every row, read in
    the same snapshot) the first minute still filling: the minute of the latest listen of
    the listen partition that is furthest behind. Minutes before it are complete."""
    where, params = span.where()
    return store.sql(
        "SELECT make_timestamp(window_start * 1000) AS window_start, genre, plays, "
        "(SELECT min(max_ts) // 60000 * 60000 FROM meta_partitions WHERE topic = ?) AS open_from "
        f"FROM {_merged('genre_minute')} {where} ORDER BY window_start, genre LIMIT ?",
        (Topic.LISTEN.value, *params, limit),
    )


def engagement(store: Reader, span: TimeRange, by: str = "genre", limit: int = 100) -> pa.Table:
    if by not in ENGAGEMENT_DIMENSIONS:
        raise ConfigError(f"--by {by!r}: choose one of {', '.join(ENGAGEMENT_DIMENSIONS)}")
    where, params = span.where(extra="dimension = ?")
    return store.sql(
        "SELECT value AS " + by + ", sum(listens)::BIGINT AS listens, "
        "round(sum(completed) / sum(listens), 4) AS completion_rate, "
        "round(sum(skipped) / sum(listens), 4) AS skip_rate, "
        "round(sum(pct_sum) / sum(listens), 4)::DOUBLE AS avg_listened, "
        "round(sum(rating_sum) / nullif(sum(rating_count), 0), 3)::DOUBLE AS avg_rating "
        f"FROM {_summed('engagement_minute')} {where} GROUP BY ALL "
        "ORDER BY listens DESC, value LIMIT ?",  # ties in a fixed order, for LIMIT too
        (*params, by, limit),
    )


def active_users(store: Reader, span: TimeRange, limit: int = 10_000) -> pa.Table:
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


def dead_letters(store: Reader, limit: int = 100) -> pa.Table:
    return store.sql(
        'SELECT topic, partition, "offset", reason, '
        # A blob cast escapes bytes that are not UTF-8 (dead letters often hold such bytes).
        "CASE WHEN octet_length(raw) > 120 THEN substr(raw::VARCHAR, 1, 120) || '...' "
        "ELSE raw::VARCHAR END AS raw, received_at "
        'FROM dead_letters ORDER BY batch_id DESC, "offset" DESC LIMIT ?',
        (limit,),
    )


def _ranked(
    metric: str, label: str, value: str, store: Reader, span: TimeRange, limit: int
) -> pa.Table:
    where, params = span.where()
    return store.sql(
        f"SELECT {label}, sum({value})::BIGINT AS {value} FROM {_summed(metric)} {where} "
        f"GROUP BY ALL ORDER BY {value} DESC, {label} LIMIT ?",
        (*params, limit),
    )


def pages(store: Reader, span: TimeRange, limit: int = 100) -> pa.Table:
    """Page views per page."""
    return _ranked("page_minute", "page", "views", store, span, limit)


def states(store: Reader, span: TimeRange, limit: int = 100) -> pa.Table:
    """Listens per US state (of the listener's address)."""
    return _ranked("state_minute", "state", "listens", store, span, limit)


def levels(store: Reader, span: TimeRange) -> pa.Table:
    """Listens per subscription level (free / paid)."""
    return _ranked("level_minute", "level", "listens", store, span, 10)


def level_changes(store: Reader, span: TimeRange) -> pa.Table:
    """Upgrades and downgrades: changes per (previous level, new level)."""
    where, params = span.where()
    return store.sql(
        "SELECT prev_level, new_level, sum(changes)::BIGINT AS changes "
        f"FROM {_summed('level_change_minute')} {where} GROUP BY ALL ORDER BY ALL",
        tuple(params),
    )


def auth_minutes(store: Reader, span: TimeRange, limit: int = 10_000) -> pa.Table:
    """Login attempts and successes per minute (epoch ms windows)."""
    where, params = span.where()
    return store.sql(
        "SELECT window_start, attempts, successes "
        f"FROM {_merged('auth_minute')} {where} ORDER BY window_start LIMIT ?",
        (*params, limit),
    )


def latest_ts(store: Reader) -> int | None:
    """Event time (epoch ms) of the store's latest event; None for an empty store."""
    value: int | None = store.sql(f"SELECT {LATEST_TS} AS t")["t"][0].as_py()
    return value


def hourly_plays(store: Reader) -> pa.Table:
    """Plays per event-time hour of the latest event's UTC day and the day before.

    Rows ``(day, hour, plays)`` with ``day`` 0 = today, 1 = yesterday.
    """
    return store.sql(
        f"WITH today AS (SELECT {LATEST_TS} // 86400000 * 86400000 AS t) "
        "SELECT CASE WHEN window_start >= t THEN 0 ELSE 1 END AS day, "
        "((window_start - t + 86400000) % 86400000) // 3600000 AS hour, "
        f"sum(plays)::BIGINT AS plays FROM {_summed('genre_minute')}, today "
        "WHERE window_start >= t - 86400000 GROUP BY ALL ORDER BY ALL"
    )


def summary(store: Reader) -> dict[str, Any]:
    """The dashboard's headline figures, in one query.

    Streams in the last hour and the hour before (event time, up to the latest minute);
    distinct users in the last 5 minutes; paid share of listens and skip rate in the last
    hour; events/s committed over the last 10 s of wall-clock time; totals.
    """
    hour = 3_600_000
    first = store.sql(
        f"WITH m AS (SELECT {LATEST_MINUTE} AS m), "
        "g AS (SELECT window_start, plays FROM " + _summed("genre_minute") + ", m "
        f"WHERE window_start > m.m - {2 * hour}), "
        "lv AS (SELECT level, sum(listens) AS n FROM " + _summed("level_minute") + ", m "
        f"WHERE window_start > m.m - {hour} GROUP BY level), "
        "en AS (SELECT sum(skipped) AS skipped, sum(listens) AS listens FROM "
        + _summed("engagement_minute")
        + ", m "
        f"WHERE dimension = 'genre' AND window_start > m.m - {hour}), "
        "b AS (SELECT coalesce(max(batch_id), 0) AS batch_id, "
        "coalesce(sum(events_in), 0) AS events_total, "
        "coalesce(sum(events_in) FILTER (WHERE committed_at >= now() - INTERVAL 10 SECOND), 0)"
        " AS recent FROM meta_batches) "
        f"SELECT {LATEST_TS} AS as_of, "
        "(SELECT batch_id FROM b) AS batch_id, "
        f"(SELECT coalesce(sum(plays), 0) FROM g, m WHERE window_start > m.m - {hour})::BIGINT "
        "AS streams_last_hour, "
        f"(SELECT coalesce(sum(plays), 0) FROM g, m WHERE window_start <= m.m - {hour})::BIGINT "
        "AS streams_prev_hour, "
        "(SELECT count(DISTINCT user_id) FROM m_user_minute, m "
        "WHERE window_start > m.m - 300000) AS active_users, "
        "(SELECT sum(n) FILTER (WHERE level = 'paid') / nullif(sum(n), 0) FROM lv)::DOUBLE "
        "AS paid_share, "
        "(SELECT skipped / nullif(listens, 0) FROM en)::DOUBLE AS skip_rate, "
        "(SELECT recent / 10.0 FROM b)::DOUBLE AS events_per_second, "
        "(SELECT events_total FROM b)::BIGINT AS events_total, "
        "(SELECT count(*) FROM dead_letters) AS dead_letters"
    ).to_pylist()[0]
    row: dict[str, Any] = dict(first)
    last, prev = row["streams_last_hour"], row["streams_prev_hour"]
    row["streams_change"] = (last - prev) / prev if prev else None
    return row


def batch_totals(store: Reader) -> dict[str, Any]:
    """Counters over every committed batch, the latest commit and recent batch latencies."""
    rows: list[dict[str, Any]] = store.sql(
        "SELECT count(*) AS batches, coalesce(max(batch_id), 0) AS batch_id, "
        "coalesce(sum(events_in), 0)::BIGINT AS events_in, "
        "coalesce(sum(accepted), 0)::BIGINT AS accepted, "
        "coalesce(sum(duplicates), 0)::BIGINT AS duplicates, "
        "coalesce(sum(late), 0)::BIGINT AS late, coalesce(sum(dead), 0)::BIGINT AS dead, "
        "epoch(now() - max(committed_at))::DOUBLE AS last_commit_age_s, "
        "coalesce(sum(events_in) FILTER (WHERE committed_at >= now() - INTERVAL 10 SECOND), 0)"
        " / 10.0 AS events_per_second, "
        "(SELECT quantile_cont(seconds, [0.5, 0.9, 0.99]) FROM "
        "(SELECT seconds FROM meta_batches ORDER BY batch_id DESC LIMIT 100)) AS batch_seconds "
        "FROM meta_batches"
    ).to_pylist()
    return rows[0]
