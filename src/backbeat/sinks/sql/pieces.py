"""SQL pieces the SQL stores' answers share: time ranges, listen filters, metric tables.

Every value is a bound parameter (written ``?``; a backend's connections translate its
placeholder); only names of the store's own tables and columns are written into the SQL text.

Next: ``answers.py`` (the queries built from them), ``dialect.py``.
"""

from __future__ import annotations

from typing import Final

from backbeat.analytics.metrics import BY_NAME, SONG_SAYS, Merge, Metric, merged_sql
from backbeat.sinks import queries as q
from backbeat.sinks.sql.dialect import Dialect

LATEST_TS: Final = "(SELECT max(max_ts) FROM meta_partitions)"
EVENT_COLUMNS: Final = (
    "ts", "user_id", "level", "gender", "state", "artist", "song", "genre", "platform",
    "country", "mood", "listen_pct", "skipped", "rating",
)  # fmt: skip
LISTEN_COLUMNS: Final = (
    "ts", "userId", "sessionId", "itemInSession", "level", "gender", "state", "artist", "song",
    "trackId", "genre", "platform", "country", "mood", "listenPct", "completed", "skipped",
    "rating", "msPlayed",
)  # fmt: skip
"""Contract columns of a listen event -> the ``listens`` table, in the table's column order."""
RESULT_TABLES: Final = ("dead_letters", "listens")
CHECKPOINT_TABLES: Final = ("meta_partitions", "meta_seen", "meta_sinks", "meta_batches")
LISTENS_TABLE: Final = (
    "batch_id", "ts", "user_id", "session_id", "item", "level", "gender", "state", "artist",
    "song", "track_id", "genre", "platform", "country", "mood", "listen_pct", "completed",
    "skipped", "rating", "ms_played",
)  # fmt: skip
"""The ``listens`` table's columns: the batch id, then ``LISTEN_COLUMNS`` as stored."""
_EQUAL: Final = ("genre", "platform", "country", "mood", "level")
_SONG_SAYS_OF_LISTENS: Final = {
    "skipped": "count(*) FILTER (WHERE skipped)",
    "completed": "count(*) FILTER (WHERE completed)",
    "pct_sum": "coalesce(sum(listen_pct::DECIMAL(18, 6)), 0)",
    "pct_count": "count(listen_pct)",
    "skipped_count": "count(skipped)",
    "completed_count": "count(completed)",
}
Params = tuple[object, ...]


def metric_table(metric: Metric) -> str:
    """The table holding a metric's partial rows (the same name in every SQL store)."""
    return f"m_{metric.name}"


def song_says_added() -> list[str]:
    """SQL that gives an older store's ``m_song_minute`` the columns of what listens say
    (:data:`~backbeat.analytics.metrics.SONG_SAYS`) and fills them from the kept ``listens``:
    zeros on the old rows, plus one row per minute and song with no plays and the listens'
    figures (partial rows add up, so the merged rows are the ones a new store would hold)."""
    metric = BY_NAME["song_minute"]
    table, types = metric_table(metric), dict(metric.values)
    added = [
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {types[name]} DEFAULT 0"
        for name in SONG_SAYS
    ]
    figures = ", ".join(_SONG_SAYS_OF_LISTENS[name] for name in SONG_SAYS)
    return [
        *added,
        f"INSERT INTO {table} ({', '.join(metric.key_names)}, plays, {', '.join(SONG_SAYS)}) "
        f"SELECT ts - ts % 60000, coalesce(track_id, 'unknown'), artist, song, 0, {figures} "
        "FROM listens GROUP BY 1, 2, 3, 4",
    ]


def latest_minute(d: Dialect) -> str:
    """SQL: the window start of the store's latest event."""
    return d.floor(LATEST_TS, 60_000)


def windows(
    d: Dialect, span: q.TimeRange, column: str = "window_start", extra: str = ""
) -> tuple[str, list[object]]:
    """A WHERE clause for ``span`` on ``column`` (and ``extra``), with its parameters."""
    clauses: list[str] = []
    params: list[object] = []
    if span.last is not None:
        # The whole bound inside one scalar subquery: DuckDB 2.0.0 narrows a sorted sum to
        # 16 bits (wrapping at 32,768) when the filter does arithmetic on a subquery's result.
        bound = d.floor("max(max_ts)", 60_000)
        clauses.append(f"{column} >= (SELECT {bound} - ? FROM meta_partitions)")
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
        clauses.append("strpos(lower(artist), lower(?)) > 0")
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


def listens_where(
    d: Dialect,
    span: q.TimeRange,
    keep: q.ListenFilter,
    extra: str = "",
    extra_params: Params = (),
) -> tuple[str, list[object]]:
    """A WHERE clause on ``listens`` for ``span`` (on ``ts``), ``keep`` and ``extra``."""
    clauses, params = _kept(keep)
    found, span_params = windows(d, span, "ts", " AND ".join(clauses + ([extra] if extra else [])))
    return found, [*span_params, *params, *extra_params]


def merged(name: str, where: str = "") -> str:
    """A subquery of a metric's final rows (of the partial rows passing ``where`` only: every
    metric is keyed by its window, so filtering windows first merges the same rows)."""
    metric = BY_NAME[name]
    rows = f"(SELECT * FROM {metric_table(metric)} {where}) AS p" if where else metric_table(metric)
    return f"({merged_sql(metric, rows)}) AS {name}"


def summed(name: str) -> str:
    """A summed metric's partial rows, for queries that sum them again anyway."""
    metric = BY_NAME[name]
    assert metric.merge is Merge.SUM, f"{name} is not merged by summing"
    return metric_table(metric)
