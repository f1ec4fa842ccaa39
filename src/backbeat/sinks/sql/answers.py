"""The SQL stores' answer to each named query: one function each, over the tables every SQL
store keeps (``m_<metric>``, ``listens``, ``dead_letters``, ``meta_*``), in the SQL DuckDB and
PostgreSQL share, with their differences spelled by the connections' ``dialect``.

Rankings and windows read the merged partial aggregates (summed rankings add up the stored
partial rows directly: the same sums without merging the whole history first); filtered
rankings, the live event table and genders read the raw ``listens``; counters read the
``meta_*`` tables. Ties are broken by the ranked label, so LIMIT cuts the same rows anywhere.

Next: ``pieces.py`` (shared pieces), ``listeners.py`` (the recommender's inputs),
``reader.py`` (the dispatch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import pyarrow as pa

from backbeat.analytics.metrics import BY_NAME
from backbeat.events.schema import Topic
from backbeat.sinks import queries as q
from backbeat.sinks.sql.connections import Connections
from backbeat.sinks.sql.listeners import interactions, user_listens
from backbeat.sinks.sql.pieces import (
    EVENT_COLUMNS,
    LATEST_TS,
    latest_minute,
    listens_where,
    merged,
    metric_table,
    summed,
    windows,
)
from backbeat.sinks.sql.skips import top_skipped

Handler = Callable[[Connections, Any], pa.Table]


def _ranked(metric: str, label: str, value: str) -> Handler:
    def handler(db: Connections, query: Any) -> pa.Table:
        where, params = windows(db.dialect, query.span)
        return db.sql(
            f"SELECT {label}, sum({value})::BIGINT AS {value} FROM {summed(metric)} {where} "
            f"GROUP BY {label} ORDER BY {value} DESC, {label} LIMIT ?",
            (*params, query.limit),
        )

    return handler


def _top(by: str) -> Handler:
    """Plays per song or artist: the stored aggregates, or the kept listens when filtered."""
    keys = "artist, song, track_id" if by == "song" else "artist"
    ranked = _ranked("artist_minute", "artist", "plays")

    def handler(db: Connections, query: q.TopSongs | q.TopArtists) -> pa.Table:
        if not query.keep.empty:
            where, params = listens_where(db.dialect, query.span, query.keep)
            return db.sql(
                f"SELECT {keys}, count(*)::BIGINT AS plays FROM listens {where} "
                f"GROUP BY {keys} ORDER BY plays DESC, {keys} LIMIT ?",
                (*params, query.limit),
            )
        if by == "artist":
            return ranked(db, query)
        where, params = windows(db.dialect, query.span)
        return db.sql(
            f"SELECT {keys}, sum(plays)::BIGINT AS plays FROM {summed('song_minute')} "
            f"{where} GROUP BY {keys} ORDER BY plays DESC, {keys} LIMIT ?",
            (*params, query.limit),
        )

    return handler


def _genre_windows(db: Connections, query: q.GenreWindows) -> pa.Table:
    d = db.dialect
    where, params = windows(d, query.span)
    return db.sql(
        f"SELECT {d.timestamp('window_start')} AS window_start, genre, plays, "
        f"(SELECT {d.floor('min(max_ts)', 60_000)} FROM meta_partitions WHERE topic = ?) "
        f"AS open_from FROM {merged('genre_minute', where)} "
        "ORDER BY genre_minute.window_start, genre LIMIT ?",
        (Topic.LISTEN.value, *params, query.limit),
    )


def _engagement(db: Connections, query: q.Engagement) -> pa.Table:
    where, params = windows(db.dialect, query.span, extra="dimension = ?")
    return db.sql(
        f"SELECT value AS {query.by}, sum(listens)::BIGINT AS listens, "
        "round(sum(completed) / nullif(sum(completed_count), 0), 4)::FLOAT8 "
        "AS completion_rate, "
        "round(sum(skipped) / nullif(sum(skipped_count), 0), 4)::FLOAT8 AS skip_rate, "
        "round(sum(pct_sum) / nullif(sum(pct_count), 0), 4)::FLOAT8 AS avg_listened, "
        "round(sum(rating_sum) / nullif(sum(rating_count), 0), 3)::FLOAT8 AS avg_rating "
        f"FROM {summed('engagement_minute')} {where} GROUP BY value "
        "ORDER BY listens DESC, value LIMIT ?",  # ties in a fixed order, for LIMIT too
        (*params, query.by, query.limit),
    )


def _active_users(db: Connections, query: q.ActiveUsers) -> pa.Table:
    where, params = windows(db.dialect, query.span)
    return db.sql(
        "WITH u AS (SELECT window_start, count(*) AS users FROM "
        f"{merged('user_minute', where)} GROUP BY window_start), "
        "s AS (SELECT window_start, count(*) AS sessions FROM "
        f"{merged('session_minute', where)} GROUP BY window_start) "
        f"SELECT {db.dialect.timestamp('window_start')} AS window_start, "
        "coalesce(users, 0) AS users, sessions FROM s LEFT JOIN u USING (window_start) "
        "ORDER BY 1 LIMIT ?",
        (*params, *params, query.limit),
    )


def _levels(db: Connections, query: q.Levels) -> pa.Table:
    where, params = windows(db.dialect, query.span)
    return db.sql(
        f"SELECT level, sum(listens)::BIGINT AS listens FROM {summed('level_minute')} {where} "
        "GROUP BY level ORDER BY listens DESC, level",
        tuple(params),
    )


def _level_changes(db: Connections, query: q.LevelChanges) -> pa.Table:
    where, params = windows(db.dialect, query.span)
    return db.sql(
        "SELECT prev_level, new_level, sum(changes)::BIGINT AS changes "
        f"FROM {summed('level_change_minute')} {where} GROUP BY 1, 2 ORDER BY 1, 2, 3",
        tuple(params),
    )


def _genders(db: Connections, query: q.Genders) -> pa.Table:
    where, params = windows(db.dialect, query.span, "ts", "gender IS NOT NULL")
    return db.sql(
        f"SELECT gender, count(*)::BIGINT AS listens FROM listens {where} "
        "GROUP BY gender ORDER BY listens DESC, gender",
        tuple(params),
    )


def _auth_minutes(db: Connections, query: q.AuthMinutes) -> pa.Table:
    where, params = windows(db.dialect, query.span)
    return db.sql(
        "SELECT window_start, attempts, successes "
        f"FROM {merged('auth_minute', where)} ORDER BY window_start LIMIT ?",
        (*params, query.limit),
    )


def _hourly_plays(db: Connections, query: q.HourlyPlays) -> pa.Table:
    d = db.dialect
    return db.sql(
        f"WITH today AS (SELECT {d.floor(LATEST_TS, 86_400_000)} AS t) "
        "SELECT CASE WHEN window_start >= t THEN 0 ELSE 1 END AS day, "
        f"{d.div('((window_start - t + 86400000) % 86400000)', 3_600_000)} AS hour, "
        f"sum(plays)::BIGINT AS plays FROM {summed('genre_minute')}, today "
        "WHERE window_start >= t - 86400000 GROUP BY 1, 2 ORDER BY 1, 2, 3"
    )


def _latest_time(db: Connections, query: q.LatestTime) -> pa.Table:
    return db.sql(f"SELECT {LATEST_TS} AS t")


_HOUR: Final = 3_600_000
_RECENT: Final = "committed_at >= now() - INTERVAL '10 seconds'"


def _summary(db: Connections, query: q.Summary) -> pa.Table:
    return db.sql(
        f"WITH m AS (SELECT {latest_minute(db.dialect)} AS m), "
        f"g AS (SELECT window_start, plays FROM {summed('genre_minute')}, m "
        f"WHERE window_start > m.m - {2 * _HOUR}), "
        f"lv AS (SELECT level, sum(listens) AS n FROM {summed('level_minute')}, m "
        f"WHERE window_start > m.m - {_HOUR} GROUP BY level), "
        "en AS (SELECT sum(skipped) AS skipped, sum(skipped_count) AS listens FROM "
        f"{summed('engagement_minute')}, m "
        f"WHERE dimension = 'genre' AND window_start > m.m - {_HOUR}), "
        "b AS (SELECT coalesce(max(batch_id), 0) AS batch_id, "
        "coalesce(sum(events_in), 0) AS events_total, "
        f"coalesce(sum(events_in) FILTER (WHERE {_RECENT}), 0) AS recent FROM meta_batches) "
        f"SELECT {LATEST_TS} AS as_of, "
        "(SELECT batch_id FROM b) AS batch_id, "
        f"(SELECT coalesce(sum(plays), 0) FROM g, m WHERE window_start > m.m - {_HOUR})::BIGINT "
        "AS streams_last_hour, "
        f"(SELECT coalesce(sum(plays), 0) FROM g, m WHERE window_start <= m.m - {_HOUR})::BIGINT "
        "AS streams_prev_hour, "
        f"(SELECT count(DISTINCT user_id) FROM {metric_table(BY_NAME['user_minute'])}, m "
        "WHERE window_start > m.m - 300000) AS active_users, "
        "(SELECT sum(n) FILTER (WHERE level = 'paid') / "
        "nullif(sum(n) FILTER (WHERE level IN ('free', 'paid')), 0) FROM lv)::FLOAT8 "
        "AS paid_share, "
        "(SELECT skipped / nullif(listens, 0) FROM en)::FLOAT8 AS skip_rate, "
        "(SELECT recent / 10.0 FROM b)::FLOAT8 AS events_per_second, "
        "(SELECT events_total FROM b)::BIGINT AS events_total, "
        "(SELECT count(*) FROM dead_letters) AS dead_letters"
    )


def _batch_totals(db: Connections, query: q.BatchTotals) -> pa.Table:
    return db.sql(
        "SELECT count(*) AS batches, coalesce(max(batch_id), 0) AS batch_id, "
        "coalesce(sum(events_in), 0)::BIGINT AS events_in, "
        "coalesce(sum(accepted), 0)::BIGINT AS accepted, "
        "coalesce(sum(duplicates), 0)::BIGINT AS duplicates, "
        "coalesce(sum(late), 0)::BIGINT AS late, coalesce(sum(dead), 0)::BIGINT AS dead, "
        "extract(epoch FROM now() - max(committed_at))::FLOAT8 AS last_commit_age_s, "
        f"(coalesce(sum(events_in) FILTER (WHERE {_RECENT}), 0) / 10.0)::FLOAT8 "
        "AS events_per_second, "
        "(SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY seconds) FROM "
        "(SELECT seconds FROM meta_batches ORDER BY batch_id DESC LIMIT 100) AS recent) "
        "AS batch_seconds FROM meta_batches"
    )


def _latest_batch(db: Connections, query: q.LatestBatch) -> pa.Table:
    return db.sql("SELECT coalesce(max(batch_id), 0) AS b FROM meta_batches")


def _listening_time(db: Connections, query: q.ListeningTime) -> pa.Table:
    where, params = windows(db.dialect, query.span, "ts")
    return db.sql(
        f"SELECT {db.dialect.timestamp('ts')}::DATE AS day, artist, "
        "count(*)::BIGINT AS plays, round(coalesce(sum(ms_played), 0) / 60000.0, 3)::FLOAT8 "
        f"AS minutes FROM listens {where} GROUP BY 1, 2 ORDER BY day, minutes DESC, artist "
        "LIMIT ?",
        (*params, query.limit),
    )


def _events(db: Connections, query: q.Events) -> pa.Table:
    where, params = (
        listens_where(db.dialect, q.EVERYTHING, query.keep)
        if query.batches is None
        else listens_where(
            db.dialect, q.EVERYTHING, query.keep, "batch_id > ? AND batch_id <= ?", query.batches
        )
    )
    return db.sql(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM listens {where} "
        "ORDER BY ts DESC, session_id, item LIMIT ?",  # (session, item) is unique: no ties
        (*params, query.limit),
    )


def _filter_values(db: Connections, query: q.FilterValues) -> pa.Table:
    return db.sql(
        "SELECT DISTINCT dimension, value FROM "
        f"{metric_table(BY_NAME['engagement_minute'])} ORDER BY 1, 2"
    )


def _dead_letters(db: Connections, query: q.DeadLetters) -> pa.Table:
    return db.sql(
        f'SELECT topic, partition, "offset", reason, {db.dialect.head("raw", q.RAW_SHOWN)} '
        "AS raw, octet_length(raw)::BIGINT AS raw_bytes, received_at "
        'FROM dead_letters ORDER BY batch_id DESC, "offset" DESC LIMIT ?',
        (query.limit,),
    )


def _dead_letter_counts(db: Connections, query: q.DeadLetterCounts) -> pa.Table:
    return db.sql(
        "SELECT topic, split_part(reason, ':', 1) AS reason, count(*)::BIGINT AS dead_letters "
        "FROM dead_letters GROUP BY 1, 2 ORDER BY dead_letters DESC, topic, reason"
    )


def _dead_letter_records(db: Connections, query: q.DeadLetterRecords) -> pa.Table:
    return db.sql(
        'SELECT batch_id, topic, partition, "offset", reason, raw FROM dead_letters '
        'WHERE batch_id > ? AND batch_id <= ? ORDER BY batch_id, partition, "offset"',
        (query.after, query.upto),
    )


def _metric_rows(db: Connections, query: q.MetricRows) -> pa.Table:
    where, params = windows(db.dialect, query.span)
    keys = ", ".join(BY_NAME[query.name].key_names)
    return db.sql(f"SELECT * FROM {merged(query.name, where)} ORDER BY {keys}", tuple(params))


HANDLERS: Final[dict[type[q.Query], Handler]] = {
    q.TopSongs: _top("song"),
    q.TopArtists: _top("artist"),
    q.TopSkipped: top_skipped,
    q.GenreWindows: _genre_windows,
    q.Engagement: _engagement,
    q.ActiveUsers: _active_users,
    q.Pages: _ranked("page_minute", "page", "views"),
    q.States: _ranked("state_minute", "state", "listens"),
    q.Levels: _levels,
    q.LevelChanges: _level_changes,
    q.Genders: _genders,
    q.AuthMinutes: _auth_minutes,
    q.HourlyPlays: _hourly_plays,
    q.LatestTime: _latest_time,
    q.Summary: _summary,
    q.BatchTotals: _batch_totals,
    q.LatestBatch: _latest_batch,
    q.ListeningTime: _listening_time,
    q.Events: _events,
    q.FilterValues: _filter_values,
    q.DeadLetters: _dead_letters,
    q.DeadLetterCounts: _dead_letter_counts,
    q.DeadLetterRecords: _dead_letter_records,
    q.MetricRows: _metric_rows,
    q.Interactions: interactions,
    q.UserListens: user_listens,
}
"""Every query a SQL store answers; never the recommender's (:data:`~backbeat.sinks.queries.
RECOMMENDER`: recommendations, similar tracks, model info)."""
