"""eventsim's original output (one NDJSON stream of page events, the "Sparkify" logs) as
backbeat's four topics.

Each record is a page event with ``page``, ``method``, ``status``, ``level``, ``auth``, a
``location`` ``"City, ST"``, a string ``userId`` (empty for guests), a float
``registration`` and, on ``NextSong``, ``artist``, ``song`` and ``length``. Routed as
eventsim's Kafka fork routes them (``docs/replay.md``): every record is a page view;
``NextSong`` is also a listen, played through (``duration`` = ``length``, ``msPlayed`` its
milliseconds, completed); ``Login`` is also an auth event,
successful when the session's next record is logged in; ``Submit Upgrade`` and
``Submit Downgrade`` are also status changes. ``eventId`` is derived from the record's keys
(``e-`` and a hash), the state is the first one of the location's, the other fields
backbeat adds are left unknown.

Next: ``listens.py`` (Spotify histories), ``source.py`` (the replay in event-time order).
"""

from __future__ import annotations

import io
from typing import Final

import pyarrow as pa
import pyarrow.json as pajson

from backbeat.errors import SourceError
from backbeat.events.schema import Topic, arrow_schema
from backbeat.scratch import scratch

RAW: Final = pa.schema(
    [
        ("ts", pa.int64()),
        ("sessionId", pa.int64()),
        ("itemInSession", pa.int64()),
        ("page", pa.string()),
        ("method", pa.string()),
        ("status", pa.int64()),
        ("level", pa.string()),
        ("auth", pa.string()),
        ("location", pa.string()),
        ("userAgent", pa.string()),
        ("userId", pa.string()),
        ("firstName", pa.string()),
        ("lastName", pa.string()),
        ("gender", pa.string()),
        ("registration", pa.float64()),
        ("artist", pa.string()),
        ("song", pa.string()),
        ("length", pa.float64()),
    ]
)

_COMMON: Final = """
    ts,
    'e-' || substr(md5(concat_ws('|', sessionId, itemInSession, ts, coalesce(userId, ''),
                                 page)), 1, 24) AS eventId,
    1 AS schemaVersion, sessionId, itemInSession::INTEGER AS itemInSession, level, auth,
    nullif(trim(regexp_extract(location, '^(.*), ', 1)), '') AS city, NULL::VARCHAR AS zip,
    nullif(regexp_extract(location, ', ([A-Z][A-Z])', 1), '') AS state,
    NULL::DOUBLE AS lat, NULL::DOUBLE AS lon, userAgent,
    TRY_CAST(nullif(userId, '') AS BIGINT) AS userId, firstName, lastName, gender,
    TRY_CAST(registration AS BIGINT) AS registration
"""
_SQL: Final = {
    Topic.PAGE_VIEW: f"""SELECT {_COMMON}, page, method, status::INTEGER AS status,
        artist, song, length AS duration FROM _raw""",
    Topic.LISTEN: f"""SELECT {_COMMON}, artist, song, length AS duration,
        NULL::VARCHAR AS trackId, NULL::VARCHAR AS album, NULL::VARCHAR AS genre,
        NULL::VARCHAR AS platform, NULL::VARCHAR AS country, NULL::VARCHAR AS mood,
        round(length * 1000)::BIGINT AS msPlayed,
        CASE WHEN length > 0 THEN 1.0 END AS listenPct,
        CASE WHEN length > 0 THEN true END AS completed,
        CASE WHEN length > 0 THEN false END AS skipped, NULL::DOUBLE AS rating
        FROM _raw WHERE page = 'NextSong'""",
    Topic.AUTH: f"""SELECT {_COMMON}, coalesce(next_auth = 'Logged In', false) AS success
        FROM (SELECT *, lead(auth) OVER (PARTITION BY sessionId ORDER BY itemInSession, ts)
                        AS next_auth FROM _raw) WHERE page = 'Login'""",
    Topic.STATUS_CHANGE: """SELECT ts,
        'e-' || substr(md5(concat_ws('|', sessionId, itemInSession, ts, coalesce(userId, ''),
                                     page, 'status')), 1, 24) AS eventId,
        1 AS schemaVersion, sessionId, itemInSession::INTEGER AS itemInSession,
        CASE page WHEN 'Submit Upgrade' THEN 'paid' ELSE 'free' END AS level, auth,
        nullif(trim(regexp_extract(location, '^(.*), ', 1)), '') AS city, NULL::VARCHAR AS zip,
        nullif(regexp_extract(location, ', ([A-Z][A-Z])', 1), '') AS state,
        NULL::DOUBLE AS lat, NULL::DOUBLE AS lon, userAgent,
        TRY_CAST(nullif(userId, '') AS BIGINT) AS userId, firstName, lastName, gender,
        TRY_CAST(registration AS BIGINT) AS registration,
        CASE page WHEN 'Submit Upgrade' THEN 'free' ELSE 'paid' END AS prevLevel
        FROM _raw WHERE page IN ('Submit Upgrade', 'Submit Downgrade')""",
}


def read_eventsim(data: bytes, name: str) -> dict[Topic, pa.Table]:
    """Every topic's events from one eventsim NDJSON file, in event-time order.

    Raises:
        SourceError: the file is not eventsim's NDJSON.
    """
    try:
        raw = pajson.read_json(
            io.BytesIO(data),
            parse_options=pajson.ParseOptions(
                explicit_schema=RAW, unexpected_field_behavior="ignore"
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SourceError(f"{name}: not eventsim's NDJSON output: {exc}") from None
    con = scratch()
    con.register("_raw", raw)
    try:
        return {
            topic: con.sql(f"SELECT * FROM ({sql}) ORDER BY ts, sessionId, itemInSession")
            .to_arrow_table()
            .cast(arrow_schema(topic))
            for topic, sql in _SQL.items()
        }
    finally:
        con.unregister("_raw")
