"""What backbeat computes, written once: each metric as SQL over one micro-batch.

Every metric is a *partial aggregate* keyed by a 1-minute event-time window
(``window_start`` = epoch ms of the minute). Partials from any number of batches merge by
adding their value columns (``Merge.SUM``) or by set union of their keys (``Merge.DISTINCT``,
for distinct users and sessions), so a store can append them and merge on read or compact.
Sums of fractional values use DECIMAL, so merging is exact in any order.

The SQL reads four views of one batch's fresh (valid, on-time, de-duplicated) events:
``listens``, ``page_views``, ``auths`` and ``status_changes``. A dimension an event may leave
out (genre, platform, state...) is counted as ``unknown``; shares of listens (completion,
skips, % listened) are over the listens that say (``completed_count``, ``skipped_count``,
``pct_count``).

Next: ``compute.py`` runs these over Arrow; ``backbeat.sinks`` stores and merges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from backbeat.events.schema import Topic

WINDOW_MS: Final = 60_000
DECIMAL: Final = "DECIMAL(38, 6)"

VIEWS: Final[dict[Topic, str]] = {
    Topic.LISTEN: "listens",
    Topic.PAGE_VIEW: "page_views",
    Topic.AUTH: "auths",
    Topic.STATUS_CHANGE: "status_changes",
}


class Merge(StrEnum):
    """How partial rows of a metric combine."""

    SUM = "sum"
    DISTINCT = "distinct"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric: its key and value columns (name -> SQL type) and its per-batch SQL."""

    name: str
    keys: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, str], ...]
    merge: Merge
    sql: str

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        return self.keys + self.values

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.keys)

    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.values)


_W = f"(ts - ts % {WINDOW_MS})"
_WS = ("window_start", "BIGINT")
_ALL_EVENTS = " UNION ALL ".join(
    f"SELECT ts, userId, sessionId FROM {view}" for view in VIEWS.values()
)


def _per_minute(name: str, view: str, dims: tuple[tuple[str, str, str], ...], value: str) -> Metric:
    """A count of events per minute and per dimension columns (column, SQL type, source)."""
    select = ", ".join(f"{src} AS {col}" for col, _, src in dims)
    return Metric(
        name=name,
        keys=(_WS, *((col, typ) for col, typ, _ in dims)),
        values=((value, "BIGINT"),),
        merge=Merge.SUM,
        sql=f"SELECT {_W} AS window_start, {select}, count(*)::BIGINT AS {value} "
        f"FROM {view} GROUP BY ALL",
    )


UNKNOWN: Final = "unknown"
"""What a metric counts an optional dimension as when the event does not carry it."""


def known(column: str) -> str:
    """SQL: the column's value, or ``unknown`` where the event left it out."""
    return f"coalesce({column}, '{UNKNOWN}')"


_SAYS: Final[dict[str, tuple[str, str]]] = {
    "completed": ("BIGINT", "count(*) FILTER (WHERE completed)::BIGINT"),
    "skipped": ("BIGINT", "count(*) FILTER (WHERE skipped)::BIGINT"),
    "pct_sum": ("{decimal}", "coalesce(sum(listenPct::DECIMAL(18, 6)), 0)::{decimal}"),
    "rating_sum": ("{decimal}", "coalesce(sum(rating::DECIMAL(18, 6)), 0)::{decimal}"),
    "rating_count": ("BIGINT", "count(rating)::BIGINT"),
    "pct_count": ("BIGINT", "count(listenPct)::BIGINT"),
    "completed_count": ("BIGINT", "count(completed)::BIGINT"),
    "skipped_count": ("BIGINT", "count(skipped)::BIGINT"),
}
"""What listens say, as value columns over ``listens``: (SQL type, aggregate). A share is over
the listens that say (``*_count``), never over every listen."""


def _says(*names: str, decimal: str = DECIMAL) -> tuple[tuple[tuple[str, str], ...], str]:
    """Value columns of :data:`_SAYS` (name, type) and their select list, in that order; sums
    of fractions as ``decimal``."""
    typed = {name: tuple(x.format(decimal=decimal) for x in _SAYS[name]) for name in names}
    return (
        tuple((name, typed[name][0]) for name in names),
        ", ".join(f"{typed[name][1]} AS {name}" for name in names),
    )


ENGAGEMENT_DIMENSIONS: Final = ("genre", "platform", "country", "mood")
_ENGAGEMENT_VALUES, _ENGAGEMENT_SELECT = _says(
    "completed", "skipped", "pct_sum", "rating_sum", "rating_count", "pct_count",
    "completed_count", "skipped_count",
)  # fmt: skip
_ENGAGEMENT_SQL: Final = " UNION ALL ".join(
    f"SELECT {_W} AS window_start, '{dim}' AS dimension, {known(dim)} AS value, "
    f"count(*)::BIGINT AS listens, {_ENGAGEMENT_SELECT} FROM listens GROUP BY ALL"
    for dim in ENGAGEMENT_DIMENSIONS
)
SONG_SAYS: Final = ("skipped", "completed", "pct_sum", "pct_count", "skipped_count",
                    "completed_count")  # fmt: skip
"""What ``song_minute`` keeps beside its plays (skips, completions, % listened: the songs
people skip; an artist's figures are the sums over its songs). Its sum of shares listened is a
DECIMAL(18, 6) (8 bytes, not 16: a row holds one song's minute, far below 10^12 listens)."""
_SONG_VALUES, _SONG_SELECT = _says(*SONG_SAYS, decimal="DECIMAL(18, 6)")
_SONG_KEYS: Final = (
    ("track_id", "VARCHAR", known("trackId")),
    ("artist", "VARCHAR", "artist"),
    ("song", "VARCHAR", "song"),
)

METRICS: Final[tuple[Metric, ...]] = (
    _per_minute("genre_minute", "listens", (("genre", "VARCHAR", known("genre")),), "plays"),
    Metric(
        name="song_minute",
        keys=(_WS, *((col, typ) for col, typ, _ in _SONG_KEYS)),
        values=(("plays", "BIGINT"), *_SONG_VALUES),
        merge=Merge.SUM,
        sql=f"SELECT {_W} AS window_start, "
        + ", ".join(f"{src} AS {col}" for col, _, src in _SONG_KEYS)
        + f", count(*)::BIGINT AS plays, {_SONG_SELECT} FROM listens GROUP BY ALL",
    ),
    _per_minute("artist_minute", "listens", (("artist", "VARCHAR", "artist"),), "plays"),
    Metric(
        name="engagement_minute",
        keys=(_WS, ("dimension", "VARCHAR"), ("value", "VARCHAR")),
        values=(("listens", "BIGINT"), *_ENGAGEMENT_VALUES),
        merge=Merge.SUM,
        sql=_ENGAGEMENT_SQL,
    ),
    _per_minute("level_minute", "listens", (("level", "VARCHAR", known("level")),), "listens"),
    _per_minute("state_minute", "listens", (("state", "VARCHAR", known("state")),), "listens"),
    _per_minute("page_minute", "page_views", (("page", "VARCHAR", "page"),), "views"),
    Metric(
        name="auth_minute",
        keys=(_WS,),
        values=(("attempts", "BIGINT"), ("successes", "BIGINT")),
        merge=Merge.SUM,
        sql=f"SELECT {_W} AS window_start, count(*)::BIGINT AS attempts, "
        "count_if(success)::BIGINT AS successes FROM auths GROUP BY ALL",
    ),
    _per_minute(
        "level_change_minute",
        "status_changes",
        (("prev_level", "VARCHAR", "prevLevel"), ("new_level", "VARCHAR", "level")),
        "changes",
    ),
    Metric(
        name="user_minute",
        keys=(_WS, ("user_id", "BIGINT")),
        values=(),
        merge=Merge.DISTINCT,
        sql=f"SELECT DISTINCT {_W} AS window_start, userId AS user_id "
        f"FROM ({_ALL_EVENTS}) WHERE userId IS NOT NULL",
    ),
    Metric(
        name="session_minute",
        keys=(_WS, ("session_id", "BIGINT")),
        values=(),
        merge=Merge.DISTINCT,
        sql=f"SELECT DISTINCT {_W} AS window_start, sessionId AS session_id FROM ({_ALL_EVENTS})",
    ),
)

BY_NAME: Final = {m.name: m for m in METRICS}


def merged_sql(metric: Metric, table: str) -> str:
    """SQL that merges all partial rows of ``metric`` stored in ``table`` into final rows."""
    keys = ", ".join(metric.key_names)
    if metric.merge is Merge.DISTINCT:
        return f"SELECT DISTINCT {keys} FROM {table}"
    sums = ", ".join(f"sum({v})::{t} AS {v}" for v, t in metric.values)
    return f"SELECT {keys}, {sums} FROM {table} GROUP BY {keys}"
