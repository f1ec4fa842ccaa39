"""The SQL stores' answers about single listeners, for the recommender: what each listener's
listens say about each track (:class:`~backbeat.sinks.queries.Interactions`) and one
listener's newest listens (:class:`~backbeat.sinks.queries.UserListens`), read from the raw
``listens`` table in one SQL text for DuckDB and PostgreSQL.

A track is keyed by its catalog id, else by its lowercased artist and song joined by
``chr(31)``; the latest listen's values (track id, artist, song, genre, country) are taken
with the dialect's :meth:`~backbeat.sinks.sql.dialect.Dialect.latest` (``arg_max_null`` in
DuckDB, an ordered ``array_agg`` in PostgreSQL), ties broken by ``(session_id, item)``, so
both stores pick the same row. Listens without a listener (guests: no ``user_id``) say
nothing about one and are left out.

Next: ``answers.py`` (every other query, and ``HANDLERS``), ``../queries.py`` (the contract).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from backbeat.sinks import queries as q
from backbeat.sinks.sql.connections import Connections
from backbeat.sinks.sql.pieces import windows

TRACK: Final = "coalesce(track_id, lower(artist) || chr(31) || lower(song))"
"""SQL: a listen's track key (as :class:`~backbeat.sinks.queries.Interactions` says)."""
_NEWEST: Final = ("ts", "session_id", "item")
"""The order of listens: event time, then the unique (session, item) for ties."""
_LATEST: Final = ("track_id", "artist", "song", "genre", "country")


def _interactions_where(db: Connections, query: q.Interactions) -> tuple[str, list[object]]:
    """The WHERE clause on ``listens`` for the query's span, batches and users."""
    clauses = ["user_id IS NOT NULL"]
    params: list[object] = []
    if query.batches is not None:
        clauses.append("batch_id > ? AND batch_id <= ?")
        params.extend(query.batches)
    if query.users is not None:  # one array parameter: a semi-join, however many users
        clauses.append("user_id IN (SELECT unnest(CAST(? AS BIGINT[])))")
        params.append(list(query.users))
    where, span_params = windows(db.dialect, query.span, "ts", " AND ".join(clauses))
    return where, [*span_params, *params]


def interactions(db: Connections, query: q.Interactions) -> pa.Table:
    """One row per (listener, track) of the listens the query selects (see its docstring)."""
    where, params = _interactions_where(db, query)
    latest = db.dialect.latest(_LATEST, _NEWEST)
    return db.sql(
        f"SELECT user_id, {TRACK} AS track, {latest}, count(*)::BIGINT AS plays, "
        f"sum({q.LISTEN_WEIGHT})::FLOAT8 AS weight, min(ts)::BIGINT AS first_ts, "
        f"max(ts)::BIGINT AS last_ts FROM listens {where} GROUP BY 1, 2 ORDER BY 1, 2",
        tuple(params),
    )


def user_listens(db: Connections, query: q.UserListens) -> pa.Table:
    """One listener's newest listens, newest first."""
    newest = ", ".join(f"{key} DESC" for key in _NEWEST)
    return db.sql(
        f"SELECT ts, {TRACK} AS track, track_id, artist, song, genre, listen_pct, completed, "
        f"skipped FROM listens WHERE user_id = ? ORDER BY {newest} LIMIT ?",
        (query.user, query.limit),
    )
