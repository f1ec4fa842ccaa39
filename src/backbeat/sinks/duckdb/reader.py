"""The embedded store's answers to the named queries: DuckDB SQL over its own tables.

Each query of ``backbeat.sinks.queries`` has one handler here that turns its typed parameters
into bound SQL over the store's tables (``schema.py``): merged partial aggregates for the
rankings and windows, the raw ``listens`` for filtered rankings and the live event table, the
``meta_*`` tables for batch counters. Summed rankings add up the stored partial rows directly
(the same sums, without first merging the whole history). Connections come from a
:class:`Connections`: per-thread cursors on the store this process has open, or the file
opened read-only per query (a store another process writes).

Next: ``store.py`` (the writer), ``schema.py`` (the tables), ``../queries.py`` (the contract).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, Protocol

import duckdb
import pyarrow as pa

from backbeat.analytics.metrics import BY_NAME, Merge, merged_sql
from backbeat.errors import StoreError, StoreLockedError
from backbeat.events.schema import Topic
from backbeat.sinks import queries as q
from backbeat.sinks.duckdb.schema import metric_table, require_schema

# The first millisecond of the minute of the store's latest event (NULL for an empty store).
LATEST_TS: Final = "(SELECT max(max_ts) FROM meta_partitions)"
LATEST_MINUTE: Final = f"({LATEST_TS} // 60000 * 60000)"
EVENT_COLUMNS: Final = (
    "ts", "user_id", "level", "gender", "state", "artist", "song", "genre", "platform",
    "country", "mood", "listen_pct", "skipped", "rating",
)  # fmt: skip
_EQUAL: Final = ("genre", "platform", "country", "mood", "level")
Params = tuple[object, ...]


class Connections(Protocol):
    """Where a reader's queries run."""

    def sql(self, query: str, params: Params = ()) -> pa.Table:
        """Run a read query; StoreError when the store cannot answer."""
        ...  # pragma: no cover


class Cursors:
    """Per-thread cursors on a connection this process holds (DuckDB connections are not
    shared between threads; a cursor of its own lets a reader run beside the engine)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._local = threading.local()

    def sql(self, query: str, params: Params = ()) -> pa.Table:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            try:
                cur = self._local.cursor = self._con.cursor()
            except duckdb.Error as exc:
                raise StoreError(f"the store was closed ({exc})") from exc
        try:
            return cur.sql(query, params=list(params)).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"read query failed: {exc}") from exc


class Files:
    """Opens the store file read-only for each query (another process writes it; members of
    a consumer group hold it only while they commit, so a query waits for them briefly)."""

    def __init__(self, path: Path, wait_s: float = 5.0) -> None:
        self._path = path
        self._wait_s = wait_s

    @contextlib.contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self._wait_s
        pause = 0.005
        while True:
            try:
                con = duckdb.connect(str(self._path), read_only=True)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise StoreError(f"cannot open the store {str(self._path)!r}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"the store {str(self._path)!r} stayed in use by another process for "
                        f"{self._wait_s:g} s"
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        try:
            yield con
        finally:
            con.close()

    def sql(self, query: str, params: Params = ()) -> pa.Table:
        with self._open() as con:
            try:
                return con.sql(query, params=list(params)).to_arrow_table()
            except duckdb.CatalogException as exc:
                require_schema(con, self._path)  # a clear line when the store is not ready
                raise StoreError(f"read query failed: {exc}") from exc
            except duckdb.Error as exc:
                raise StoreError(f"read query failed: {exc}") from exc


# ---------------------------------------------------------------------------- SQL helpers


def _where(
    span: q.TimeRange, column: str = "window_start", extra: str = ""
) -> tuple[str, list[object]]:
    """A WHERE clause for ``span`` on ``column`` (and ``extra``), with its parameters."""
    clauses: list[str] = []
    params: list[object] = []
    if span.last is not None:
        clauses.append(f"{column} >= {LATEST_MINUTE} - ?")
        params.append(span.last - 60_000)
    if span.start is not None:
        clauses.append(f"{column} >= ?")
        params.append(span.start)
    if span.end is not None:
        clauses.append(f"{column} < ?")
        params.append(span.end)
    if extra:
        clauses.append(extra)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _kept(keep: q.ListenFilter) -> tuple[list[str], list[object]]:
    """SQL conditions on ``listens`` for a filter (AND-ed by the caller) and their params."""
    clauses: list[str] = []
    params: list[object] = []
    if keep.artist:
        clauses.append("contains(lower(artist), lower(?))")
        params.append(keep.artist)
    for name in _EQUAL:
        value = getattr(keep, name)
        if value is not None:
            clauses.append(f"{name} = ?")
            params.append(value)
    if keep.min_rating is not None:
        clauses.append("rating >= ?")
        params.append(keep.min_rating)
    if keep.skipped is not None:
        clauses.append("skipped = ?")
        params.append(keep.skipped)
    return clauses, params


def _listens_where(
    span: q.TimeRange, keep: q.ListenFilter, extra: str = "", extra_params: Params = ()
) -> tuple[str, list[object]]:
    clauses, params = _kept(keep)
    where, span_params = _where(span, "ts", " AND ".join(clauses + ([extra] if extra else [])))
    return where, [*span_params, *params, *extra_params]


def _merged(name: str, where: str = "") -> str:
    """A subquery of a metric's final rows (of the partial rows passing ``where`` only: every
    metric is keyed by its window, so filtering windows first merges the same rows)."""
    metric = BY_NAME[name]
    rows = f"(SELECT * FROM {metric_table(metric)} {where})" if where else metric_table(metric)
    return f"({merged_sql(metric, rows)})"


def _summed(name: str) -> str:
    """A summed metric's partial rows, for queries that sum them again anyway."""
    metric = BY_NAME[name]
    assert metric.merge is Merge.SUM, f"{name} is not merged by summing"
    return metric_table(metric)


# ---------------------------------------------------------------------------- handlers

Handler = Callable[[Connections, Any], pa.Table]


def _ranked(metric: str, label: str, value: str) -> Handler:
    def handler(db: Connections, query: Any) -> pa.Table:
        where, params = _where(query.span)
        return db.sql(
            f"SELECT {label}, sum({value})::BIGINT AS {value} FROM {_summed(metric)} {where} "
            f"GROUP BY ALL ORDER BY {value} DESC, {label} LIMIT ?",
            (*params, query.limit),
        )

    return handler


def _top(by: str) -> Handler:
    """Plays per song or artist: the stored aggregates, or the kept listens when filtered."""
    keys = "artist, song, track_id" if by == "song" else "artist"
    ranked = _ranked("artist_minute", "artist", "plays")

    def handler(db: Connections, query: q.TopSongs | q.TopArtists) -> pa.Table:
        if not query.keep.empty:
            where, params = _listens_where(query.span, query.keep)
            return db.sql(
                f"SELECT {keys}, count(*)::BIGINT AS plays FROM listens {where} "
                f"GROUP BY ALL ORDER BY plays DESC, {keys} LIMIT ?",
                (*params, query.limit),
            )
        if by == "artist":
            return ranked(db, query)
        where, params = _where(query.span)
        return db.sql(
            f"SELECT {keys}, sum(plays)::BIGINT AS plays FROM {_summed('song_minute')} "
            f"{where} GROUP BY ALL ORDER BY plays DESC, {keys} LIMIT ?",
            (*params, query.limit),
        )

    return handler


def _genre_windows(db: Connections, query: q.GenreWindows) -> pa.Table:
    where, params = _where(query.span)
    return db.sql(
        "SELECT make_timestamp(window_start * 1000) AS window_start, genre, plays, "
        "(SELECT min(max_ts) // 60000 * 60000 FROM meta_partitions WHERE topic = ?) AS open_from "
        f"FROM {_merged('genre_minute', where)} ORDER BY window_start, genre LIMIT ?",
        (Topic.LISTEN.value, *params, query.limit),
    )


def _engagement(db: Connections, query: q.Engagement) -> pa.Table:
    where, params = _where(query.span, extra="dimension = ?")
    return db.sql(
        f"SELECT value AS {query.by}, sum(listens)::BIGINT AS listens, "
        "round(sum(completed) / sum(listens), 4) AS completion_rate, "
        "round(sum(skipped) / sum(listens), 4) AS skip_rate, "
        "round(sum(pct_sum) / sum(listens), 4)::DOUBLE AS avg_listened, "
        "round(sum(rating_sum) / nullif(sum(rating_count), 0), 3)::DOUBLE AS avg_rating "
        f"FROM {_summed('engagement_minute')} {where} GROUP BY ALL "
        "ORDER BY listens DESC, value LIMIT ?",  # ties in a fixed order, for LIMIT too
        (*params, query.by, query.limit),
    )


def _active_users(db: Connections, query: q.ActiveUsers) -> pa.Table:
    where, params = _where(query.span)
    return db.sql(
        "WITH u AS (SELECT window_start, count(*) AS users FROM "
        f"{_merged('user_minute', where)} GROUP BY ALL), "
        "s AS (SELECT window_start, count(*) AS sessions FROM "
        f"{_merged('session_minute', where)} GROUP BY ALL) "
        "SELECT make_timestamp(window_start * 1000) AS window_start, "
        "coalesce(users, 0) AS users, sessions FROM s LEFT JOIN u USING (window_start) "
        "ORDER BY window_start LIMIT ?",
        (*params, *params, query.limit),
    )


def _levels(db: Connections, query: q.Levels) -> pa.Table:
    where, params = _where(query.span)
    return db.sql(
        f"SELECT level, sum(listens)::BIGINT AS listens FROM {_summed('level_minute')} {where} "
        "GROUP BY ALL ORDER BY listens DESC, level",
        tuple(params),
    )


def _level_changes(db: Connections, query: q.LevelChanges) -> pa.Table:
    where, params = _where(query.span)
    return db.sql(
        "SELECT prev_level, new_level, sum(changes)::BIGINT AS changes "
        f"FROM {_summed('level_change_minute')} {where} GROUP BY ALL ORDER BY ALL",
        tuple(params),
    )


def _genders(db: Connections, query: q.Genders) -> pa.Table:
    where, params = _where(query.span, "ts", "gender IS NOT NULL")
    return db.sql(
        f"SELECT gender, count(*)::BIGINT AS listens FROM listens {where} "
        "GROUP BY ALL ORDER BY listens DESC, gender",
        tuple(params),
    )


def _auth_minutes(db: Connections, query: q.AuthMinutes) -> pa.Table:
    where, params = _where(query.span)
    return db.sql(
        "SELECT window_start, attempts, successes "
        f"FROM {_merged('auth_minute', where)} ORDER BY window_start LIMIT ?",
        (*params, query.limit),
    )


def _hourly_plays(db: Connections, query: q.HourlyPlays) -> pa.Table:
    return db.sql(
        f"WITH today AS (SELECT {LATEST_TS} // 86400000 * 86400000 AS t) "
        "SELECT CASE WHEN window_start >= t THEN 0 ELSE 1 END AS day, "
        "((window_start - t + 86400000) % 86400000) // 3600000 AS hour, "
        f"sum(plays)::BIGINT AS plays FROM {_summed('genre_minute')}, today "
        "WHERE window_start >= t - 86400000 GROUP BY ALL ORDER BY ALL"
    )


def _latest_time(db: Connections, query: q.LatestTime) -> pa.Table:
    return db.sql(f"SELECT {LATEST_TS} AS t")


_HOUR: Final = 3_600_000
_RECENT: Final = "committed_at >= now() - INTERVAL 10 SECOND"


def _summary(db: Connections, query: q.Summary) -> pa.Table:
    return db.sql(
        f"WITH m AS (SELECT {LATEST_MINUTE} AS m), "
        f"g AS (SELECT window_start, plays FROM {_summed('genre_minute')}, m "
        f"WHERE window_start > m.m - {2 * _HOUR}), "
        f"lv AS (SELECT level, sum(listens) AS n FROM {_summed('level_minute')}, m "
        f"WHERE window_start > m.m - {_HOUR} GROUP BY level), "
        "en AS (SELECT sum(skipped) AS skipped, sum(listens) AS listens FROM "
        f"{_summed('engagement_minute')}, m "
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
        "(SELECT sum(n) FILTER (WHERE level = 'paid') / nullif(sum(n), 0) FROM lv)::DOUBLE "
        "AS paid_share, "
        "(SELECT skipped / nullif(listens, 0) FROM en)::DOUBLE AS skip_rate, "
        "(SELECT recent / 10.0 FROM b)::DOUBLE AS events_per_second, "
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
        "epoch(now() - max(committed_at))::DOUBLE AS last_commit_age_s, "
        f"coalesce(sum(events_in) FILTER (WHERE {_RECENT}), 0) / 10.0 AS events_per_second, "
        "(SELECT quantile_cont(seconds, [0.5, 0.9, 0.99]) FROM "
        "(SELECT seconds FROM meta_batches ORDER BY batch_id DESC LIMIT 100)) AS batch_seconds "
        "FROM meta_batches"
    )


def _latest_batch(db: Connections, query: q.LatestBatch) -> pa.Table:
    return db.sql("SELECT coalesce(max(batch_id), 0) AS b FROM meta_batches")


def _events(db: Connections, query: q.Events) -> pa.Table:
    where, params = (
        _listens_where(q.EVERYTHING, query.keep)
        if query.batches is None
        else _listens_where(
            q.EVERYTHING, query.keep, "batch_id > ? AND batch_id <= ?", query.batches
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
        f"{metric_table(BY_NAME['engagement_minute'])} ORDER BY ALL"
    )


def _dead_letters(db: Connections, query: q.DeadLetters) -> pa.Table:
    return db.sql(
        'SELECT topic, partition, "offset", reason, '
        # A blob cast escapes bytes that are not UTF-8 (dead letters often hold such bytes).
        "CASE WHEN octet_length(raw) > 120 THEN substr(raw::VARCHAR, 1, 120) || '...' "
        "ELSE raw::VARCHAR END AS raw, received_at "
        'FROM dead_letters ORDER BY batch_id DESC, "offset" DESC LIMIT ?',
        (query.limit,),
    )


def _dead_letter_counts(db: Connections, query: q.DeadLetterCounts) -> pa.Table:
    return db.sql(
        "SELECT topic, split_part(reason, ':', 1) AS reason, count(*)::BIGINT AS dead_letters "
        "FROM dead_letters GROUP BY ALL ORDER BY dead_letters DESC, topic, reason"
    )


def _dead_letter_records(db: Connections, query: q.DeadLetterRecords) -> pa.Table:
    return db.sql(
        'SELECT batch_id, topic, partition, "offset", reason, raw FROM dead_letters '
        'WHERE batch_id > ? AND batch_id <= ? ORDER BY batch_id, partition, "offset"',
        (query.after, query.upto),
    )


def _metric_rows(db: Connections, query: q.MetricRows) -> pa.Table:
    where, params = _where(query.span)
    keys = ", ".join(BY_NAME[query.name].key_names)
    return db.sql(f"SELECT * FROM {_merged(query.name, where)} ORDER BY {keys}", tuple(params))


HANDLERS: Final[dict[type[q.Query], Handler]] = {
    q.TopSongs: _top("song"),
    q.TopArtists: _top("artist"),
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
    q.Events: _events,
    q.FilterValues: _filter_values,
    q.DeadLetters: _dead_letters,
    q.DeadLetterCounts: _dead_letter_counts,
    q.DeadLetterRecords: _dead_letter_records,
    q.MetricRows: _metric_rows,
}


class DuckDBReader(q.Reader):
    """Answers every named query from a DuckDB store."""

    def __init__(self, connections: Connections) -> None:
        self._db = connections

    def answers(self) -> frozenset[str]:
        return frozenset(q.name_of(kind) for kind in HANDLERS)

    def run(self, query: q.Query) -> pa.Table:
        handler = HANDLERS.get(type(query))
        if handler is None:
            raise self.refuse(query)
        return handler(self._db, query)
