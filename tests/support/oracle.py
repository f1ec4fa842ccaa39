"""The expected results of a JSONL log, computed independently of the engine.

Written from the semantics in the test plan, not from ``backbeat.analytics``: the valid lines
(all lines minus the manifest's malformed ones) are read with DuckDB's own JSON reader, each
tagged with its byte offset; lateness is a window ``max`` over earlier lines of the file;
a duplicate is an on-time event with an earlier on-time event of the same eventId or the same
(sessionId, itemInSession) whose ts is at or above its watermark (a window ``max`` per key);
each metric is one plain ``GROUP BY`` over the fresh events.

Next: ``eventlog.py`` (the logs), ``tests/engine/test_exact.py`` (the comparison).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb

LATENESS_MS = 120_000
WINDOW_MS = 60_000

_COMMON = {
    "ts": "BIGINT",
    "eventId": "VARCHAR",
    "sessionId": "BIGINT",
    "itemInSession": "INTEGER",
    "userId": "BIGINT",
    "level": "VARCHAR",
    "state": "VARCHAR",
}
_COLUMNS = {
    "listen_events": _COMMON
    | {
        "genre": "VARCHAR",
        "trackId": "VARCHAR",
        "artist": "VARCHAR",
        "song": "VARCHAR",
        "platform": "VARCHAR",
        "country": "VARCHAR",
        "mood": "VARCHAR",
        "listenPct": "DOUBLE",
        "rating": "DOUBLE",
        "completed": "BOOLEAN",
        "skipped": "BOOLEAN",
    },
    "page_view_events": _COMMON | {"page": "VARCHAR"},
    "auth_events": _COMMON | {"success": "BOOLEAN"},
    "status_change_events": _COMMON | {"prevLevel": "VARCHAR"},
}

_W = f"ts - ts % {WINDOW_MS}"
_D = "DECIMAL(18, 6)"
_ENGAGEMENT = " UNION ALL ".join(
    f"SELECT {_W} AS window_start, '{dim}' AS dimension, coalesce({dim}, 'unknown') AS value, "
    "count(*) AS listens, sum(CASE WHEN completed THEN 1 ELSE 0 END) AS completed, "
    "sum(CASE WHEN skipped THEN 1 ELSE 0 END) AS skipped, "
    f"coalesce(sum(CAST(listenPct AS {_D})), 0) AS pct_sum, "
    f"coalesce(sum(CAST(rating AS {_D})), 0) AS rating_sum, count(rating) AS rating_count, "
    "count(listenPct) AS pct_count, count(completed) AS completed_count, "
    "count(skipped) AS skipped_count FROM fresh_listen_events GROUP BY 1, 2, 3"
    for dim in ("genre", "platform", "country", "mood")
)
_ALL = " UNION ALL ".join(f"SELECT ts, userId, sessionId FROM fresh_{t}" for t in _COLUMNS)
QUERIES: dict[str, str] = {
    "genre_minute": f"SELECT {_W} AS window_start, coalesce(genre, 'unknown') AS genre, "
    "count(*) AS plays FROM fresh_listen_events GROUP BY 1, 2",
    "song_minute": f"SELECT {_W} AS window_start, coalesce(trackId, 'unknown') AS track_id, "
    "artist, song, count(*) AS plays, sum(CASE WHEN skipped THEN 1 ELSE 0 END) AS skipped, "
    "sum(CASE WHEN completed THEN 1 ELSE 0 END) AS completed, "
    f"coalesce(sum(CAST(listenPct AS {_D})), 0) AS pct_sum, count(listenPct) AS pct_count, "
    "count(skipped) AS skipped_count, count(completed) AS completed_count "
    "FROM fresh_listen_events GROUP BY 1, 2, 3, 4",
    "artist_minute": f"SELECT {_W} AS window_start, artist, count(*) AS plays "
    "FROM fresh_listen_events GROUP BY 1, 2",
    "engagement_minute": _ENGAGEMENT,
    "level_minute": f"SELECT {_W} AS window_start, coalesce(level, 'unknown') AS level, "
    "count(*) AS listens FROM fresh_listen_events GROUP BY 1, 2",
    "state_minute": f"SELECT {_W} AS window_start, coalesce(state, 'unknown') AS state, "
    "count(*) AS listens FROM fresh_listen_events GROUP BY 1, 2",
    "page_minute": f"SELECT {_W} AS window_start, page, count(*) AS views "
    "FROM fresh_page_view_events GROUP BY 1, 2",
    "auth_minute": f"SELECT {_W} AS window_start, count(*) AS attempts, "
    "count(*) FILTER (WHERE success) AS successes FROM fresh_auth_events GROUP BY 1",
    "level_change_minute": f"SELECT {_W} AS window_start, prevLevel AS prev_level, "
    "level AS new_level, count(*) AS changes FROM fresh_status_change_events GROUP BY 1, 2, 3",
    "user_minute": f"SELECT {_W} AS window_start, userId AS user_id FROM ({_ALL}) "
    "WHERE userId IS NOT NULL GROUP BY 1, 2",
    "session_minute": f"SELECT {_W} AS window_start, sessionId AS session_id FROM ({_ALL}) "
    "GROUP BY 1, 2",
}
_VALUES = {
    "plays",
    "listens",
    "completed",
    "skipped",
    "pct_sum",
    "rating_sum",
    "rating_count",
    "pct_count",
    "completed_count",
    "skipped_count",
    "views",
    "attempts",
    "successes",
    "changes",
}


SKIPPED_CASES: tuple[tuple[str, int, str | None], ...] = (
    ("song", 3, None),
    ("artist", 20, None),
    ("song", 2, "ios"),
)
"""Top-skipped rankings the oracle answers: (by, min_plays, only this platform or any)."""


def top_skipped(
    con: duckdb.DuckDBPyConnection,
    by: str,
    min_plays: int,
    where: str = "",
    table: str = "fresh_listen_events",
    limit: int = 100_000,
) -> list[dict[str, Any]]:
    """The top-skipped ranking over the listen events in ``table`` (``where``: a condition
    on them): skip, completion and listened shares over the listens that say (exact, rounded
    half up to 4 places), highest exact skip rate first, then listens, then the labels."""
    labels = "artist, song, coalesce(trackId, 'unknown') AS track_id" if by == "song" else "artist"
    order = "artist, song, track_id" if by == "song" else "artist"
    rows = (
        con.sql(
            f"SELECT {labels}, count(*) AS listens, count(*) FILTER (WHERE skipped) AS skips, "
            "count(skipped) AS said_skipped, count(*) FILTER (WHERE completed) AS completed, "
            f"count(completed) AS said_completed, sum(CAST(listenPct AS {_D})) AS pct, "
            f"count(listenPct) AS said_pct FROM {table} {f'WHERE {where}' if where else ''} "
            f"GROUP BY ALL HAVING count(*) >= {min_plays} AND count(skipped) > 0 ORDER BY "
            f"count(*) FILTER (WHERE skipped) / count(skipped) DESC, listens DESC, {order} "
            f"LIMIT {limit}"
        )
        .to_arrow_table()
        .to_pylist()
    )

    def share(part: Any, whole: int) -> float | None:
        if not whole:
            return None
        return float((Decimal(part) / whole).quantize(Decimal("0.0001"), ROUND_HALF_UP))

    return [
        {k: r[k] for k in (*order.split(", "), "listens", "skips")}
        | {
            "skip_rate": share(r["skips"], r["said_skipped"]),
            "completion_rate": share(r["completed"], r["said_completed"]),
            "avg_listened": share(r["pct"], r["said_pct"]),
        }
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Expected:
    """What the engine must produce for a log."""

    metrics: dict[str, list[dict[str, Any]]]
    late: dict[str, set[int]]  # file name -> byte offsets of late lines
    duplicates: dict[str, int]  # file name -> number of duplicate lines dropped
    valid: dict[str, int]  # file name -> number of valid lines
    listen_watermark: int | None  # max valid listen ts - lateness
    skipped: dict[tuple[str, int, str | None], list[dict[str, Any]]]  # SKIPPED_CASES -> rows

    def final_genre_rows(self) -> list[dict[str, Any]]:
        """genre_minute rows whose window ended at or before the final listen watermark."""
        wm = self.listen_watermark
        return [
            r
            for r in self.metrics["genre_minute"]
            if wm is not None and r["window_start"] + WINDOW_MS <= wm
        ]


def compute(directory: Path, malformed: dict[str, set[int]]) -> Expected:
    """Expected results of the ``<topic>.jsonl`` files in ``directory``.

    ``malformed`` maps a file name to the byte offsets of its malformed lines (from the
    injector's manifest); every other non-empty line must be a valid record.
    """
    con = duckdb.connect(config={"threads": 2})
    late: dict[str, set[int]] = {}
    dups: dict[str, int] = {}
    valid: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for topic, columns in _COLUMNS.items():
            name = f"{topic}.jsonl"
            path = directory / name
            tagged = Path(tmp) / name
            valid[name] = _tag(path, malformed.get(name, set()), tagged)
            spec = ", ".join(f"'{c}': '{t}'" for c, t in ({"_off": "BIGINT"} | columns).items())
            con.execute(
                f"CREATE TABLE raw_{topic} AS SELECT * FROM read_ndjson('{tagged}', "
                f"columns={{{spec}}}, maximum_object_size=100000000)"
            )
            con.execute(
                f"CREATE TABLE ontime_{topic} AS SELECT * FROM (SELECT *, max(ts) OVER ("
                "ORDER BY _off ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max "
                f"FROM raw_{topic}) WHERE prev_max IS NULL OR ts >= prev_max - {LATENESS_MS}"
            )
            # A duplicate: an earlier on-time row with the same eventId or key whose ts is
            # still inside this row's horizon (ts >= its watermark, prev_max - lateness).
            earlier = "ORDER BY _off ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
            con.execute(
                f"CREATE TABLE fresh_{topic} AS SELECT * FROM (SELECT *, "
                f"max(ts) OVER (PARTITION BY eventId {earlier}) AS id_ts, "
                f"max(ts) OVER (PARTITION BY sessionId, itemInSession {earlier}) AS key_ts "
                f"FROM ontime_{topic}) "
                f"WHERE NOT coalesce(id_ts >= prev_max - {LATENESS_MS}, false) "
                f"AND NOT coalesce(key_ts >= prev_max - {LATENESS_MS}, false)"
            )
            late[name] = {
                r[0]
                for r in con.execute(
                    f"SELECT _off FROM raw_{topic} EXCEPT SELECT _off FROM ontime_{topic}"
                ).fetchall()
            }
            row = con.execute(
                f"SELECT (SELECT count(*) FROM ontime_{topic}) - (SELECT count(*) FROM fresh_{topic})"
            ).fetchone()
            dups[name] = int(row[0]) if row else 0
        metrics = {name: _rows(con, sql) for name, sql in QUERIES.items()}
        skipped = {
            (by, least, only): top_skipped(con, by, least, f"platform = '{only}'" if only else "")
            for by, least, only in SKIPPED_CASES
        }
        row = con.execute(f"SELECT max(ts) - {LATENESS_MS} FROM raw_listen_events").fetchone()
    con.close()
    return Expected(metrics, late, dups, valid, row[0] if row else None, skipped)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    columns = [r[0] for r in con.execute(f"DESCRIBE {sql}").fetchall()]
    keys = [c for c in columns if c not in _VALUES]
    casts = ", ".join(
        f"CAST({c} AS DECIMAL(38, 6)) AS {c}"
        if c in ("pct_sum", "rating_sum")
        else f"CAST({c} AS BIGINT) AS {c}"
        if c in _VALUES
        else c
        for c in columns
    )
    table = con.sql(f"SELECT {casts} FROM ({sql}) ORDER BY {', '.join(keys)}").to_arrow_table()
    return table.to_pylist()


def _tag(path: Path, bad: set[int], out: Path) -> int:
    """Copy the valid lines of ``path`` to ``out``, each with its byte offset as ``_off``."""
    data = path.read_bytes() if path.exists() else b""
    offset = 0
    kept = 0
    with out.open("wb") as fh:
        for line in data.split(b"\n")[:-1] if data else []:
            if offset not in bad:
                if not line.startswith(b"{"):
                    raise AssertionError(f"{path.name}@{offset}: unlisted bad line {line[:80]!r}")
                fh.write(b'{"_off":%d,%s\n' % (offset, line[1:]))
                kept += 1
            offset += len(line) + 1
    return kept
