"""The SQL stores' answer to ``top-skipped``: the songs (or artists) people skip most.

Unfiltered, it sums the stored ``song_minute`` partial rows, which keep what each minute's
listens of a song said beside its plays (skips, completions, % listened): an artist's figures
are the sums over its songs, exactly, so no table of its own is kept. With a listen filter it
counts the kept raw ``listens`` instead, into rows of the same columns, and both paths share
one ranking query. Shares are over the listens that say (``*_count``); the ranking uses the
exact skip rate, the answer shows it rounded to 4 places.

Next: ``answers.py`` (the other queries), ``pieces.py``, ``../../analytics/metrics.py``
(``song_minute``).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from backbeat.sinks import queries as q
from backbeat.sinks.sql.connections import Connections
from backbeat.sinks.sql.pieces import listens_where, summed, windows

_LABELS: Final = {"song": ("artist", "song", "track_id"), "artist": ("artist",)}
_OF_A_LISTEN: Final = {
    "plays": "1::BIGINT",
    "skipped": "(CASE WHEN skipped THEN 1 ELSE 0 END)::BIGINT",
    "completed": "(CASE WHEN completed THEN 1 ELSE 0 END)::BIGINT",
    "pct_sum": "listen_pct::DECIMAL(18, 6)",
    "pct_count": "(CASE WHEN listen_pct IS NULL THEN 0 ELSE 1 END)::BIGINT",
    "skipped_count": "(CASE WHEN skipped IS NULL THEN 0 ELSE 1 END)::BIGINT",
    "completed_count": "(CASE WHEN completed IS NULL THEN 0 ELSE 1 END)::BIGINT",
}
"""What one raw listen adds to each figure ``song_minute`` keeps (BIGINT, as stored:
PostgreSQL sums an INTEGER to a BIGINT and a BIGINT to a NUMERIC)."""


def _share(part: int, whole: int, scale: int = 1) -> float | None:
    """``part / (whole * scale)`` rounded half up to 4 places, exactly (integers: a DOUBLE
    division rounds a half such as 0.75085 either way); None when no listen said."""
    if not whole:
        return None
    return ((2 * 10_000 * part + whole * scale) // (2 * whole * scale)) / 10_000


_SHARES: Final = (("skip_rate", "skips", "skipped_count", 1),
                  ("completion_rate", "completed", "completed_count", 1),
                  ("avg_listened", "pct_micros", "pct_count", 1_000_000))  # fmt: skip


def top_skipped(db: Connections, query: q.TopSkipped) -> pa.Table:
    """Rows ``(*labels, listens, skips, skip_rate, completion_rate, avg_listened)``."""
    labels = ", ".join(_LABELS[query.by])
    if query.keep.empty:
        where, params = windows(db.dialect, query.span)
        rows = f"SELECT {labels}, {', '.join(_OF_A_LISTEN)} FROM {summed('song_minute')} {where}"
    else:
        where, params = listens_where(db.dialect, query.span, query.keep)
        keys = labels.replace("track_id", "coalesce(track_id, 'unknown') AS track_id")
        figures = ", ".join(f"{sql} AS {name}" for name, sql in _OF_A_LISTEN.items())
        rows = f"SELECT {keys}, {figures} FROM listens {where}"
    found = db.sql(
        f"SELECT {labels}, sum(plays)::BIGINT AS listens, sum(skipped)::BIGINT AS skips, "
        "sum(skipped_count)::BIGINT AS skipped_count, sum(completed)::BIGINT AS completed, "
        "sum(completed_count)::BIGINT AS completed_count, "
        "(sum(pct_sum) * 1000000)::BIGINT AS pct_micros, sum(pct_count)::BIGINT AS pct_count "
        f"FROM ({rows}) AS r GROUP BY {labels} "
        "HAVING sum(plays) >= ? AND sum(skipped_count) > 0 "
        "ORDER BY sum(skipped)::FLOAT8 / sum(skipped_count)::FLOAT8 DESC, listens DESC, "
        f"{labels} LIMIT ?",
        (*params, query.min_plays, query.limit),
    )
    answer = found.select([*_LABELS[query.by], "listens", "skips"])
    for name, part, whole, scale in _SHARES:
        shares = map(
            _share, found[part].to_pylist(), found[whole].to_pylist(), [scale] * len(found)
        )
        answer = answer.append_column(name, pa.array(list(shares), pa.float64()))
    return answer
