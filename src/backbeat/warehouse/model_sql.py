"""The star schema's SQL (DuckDB) and the Arrow schema of each model table.

The queries read the Arrow tables the builder registers (``model.py``): ``events`` (the user
and location columns of every topic's staging rows, ``late`` true on a status change),
``listens`` (the gold table), then each table built before by its name. Times are naive ``TIMESTAMP`` here, meaning
UTC (the builder strips and restores the zone), so no query depends on the session's zone.

Surrogate keys are ``md5`` of the natural key (hex): the same rows give the same keys on every
rebuild, and a fact row can be keyed without a lookup. ``dim_datetime``'s key is the hour
number (epoch hours), the lake's and the batch jobs' name for an hour.

Next: ``model.py`` (what runs these and writes the tables).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

FAR_FUTURE: Final = "9999-12-31 00:00:00"
"""``row_expiration_date`` of a user's current row."""

# A period starts where a user's level differs from the level of their previous event, all
# topics together in event order. A status change shares its ts and (sessionId, itemInSession)
# with the page view that caused it (``Submit Upgrade``, still at the old level), so it sorts
# after the page view (``late``): the new level starts with the change, not one event later.
DIM_USERS: Final = f"""
WITH ordered AS (
    SELECT *, lag(level) OVER w AS prev_level, row_number() OVER w AS seq
    FROM events
    WHERE userId IS NOT NULL AND level IS NOT NULL
    WINDOW w AS (PARTITION BY userId ORDER BY ts, sessionId, itemInSession, late)
),
starts AS (
    SELECT *, lead(ts) OVER (PARTITION BY userId ORDER BY seq) AS next_start
    FROM ordered
    WHERE prev_level IS NULL OR prev_level <> level
)
SELECT
    md5(concat_ws('|', userId, epoch_us(ts), level)) AS user_key,
    userId, level, firstName, lastName, gender,
    make_timestamp(registration * 1000) AS registration,
    ts AS row_activation_date,
    coalesce(next_start, TIMESTAMP '{FAR_FUTURE}') AS row_expiration_date,
    next_start IS NULL AS current_row
FROM starts
ORDER BY userId, row_activation_date
"""


def _song_id(t: str = "") -> str:
    """A song's natural key: its track id, else its artist and title."""
    return f"coalesce('t|' || {t}trackId, concat_ws('|', 's', {t}artist, {t}song))"


def _place_key(t: str = "") -> str:
    """A place's key, null for an event that names no place."""
    cols = [f"{t}{c}" for c in ("city", "state", "zip", "lat", "lon")]
    text = ", ".join(f"CAST({c} AS VARCHAR)" for c in cols)
    return f"CASE WHEN coalesce({text}) IS NOT NULL THEN md5(concat_ws('|', {', '.join(cols)})) END"


DIM_SONGS: Final = f"""
SELECT
    md5({_song_id()}) AS song_key,
    arg_max(trackId, ts) AS trackId,
    arg_max(song, ts) AS song,
    arg_max(artist, ts) AS artist,
    md5(arg_max(artist, ts)) AS artist_key,
    arg_max(duration, ts) FILTER (WHERE duration IS NOT NULL) AS duration,
    arg_max(album, ts) FILTER (WHERE album IS NOT NULL) AS album,
    arg_max(genre, ts) FILTER (WHERE genre IS NOT NULL) AS genre
FROM listens
GROUP BY {_song_id()}
ORDER BY song_key
"""

# The event contract knows no artist's home: ``location`` stays null until a catalog does.
DIM_ARTISTS: Final = """
SELECT md5(artist) AS artist_key, artist AS name, CAST(NULL AS VARCHAR) AS location
FROM (SELECT DISTINCT artist FROM listens WHERE artist IS NOT NULL)
ORDER BY artist_key
"""

_PLACE: Final = "city, state, zip, lat, lon"

# Only listens carry ``country``: a place takes the one its listens name (if any).
DIM_LOCATION: Final = f"""
SELECT
    {_place_key()} AS location_key, {_PLACE},
    max(country) AS country
FROM events
WHERE {_place_key()} IS NOT NULL
GROUP BY {_PLACE}
ORDER BY location_key
"""

DIM_DATETIME: Final = """
WITH span AS (SELECT min(date_trunc('hour', ts)) AS lo, max(date_trunc('hour', ts)) AS hi FROM listens)
SELECT
    CAST(epoch(h) // 3600 AS BIGINT) AS datetime_key,
    h AS date_hour,
    CAST(h AS DATE) AS date,
    CAST(isodow(h) AS INTEGER) AS day_of_week,
    dayname(h) AS day_name,
    CAST(day(h) AS INTEGER) AS day_of_month,
    CAST(weekofyear(h) AS INTEGER) AS week_of_year,
    CAST(month(h) AS INTEGER) AS month,
    CAST(year(h) AS INTEGER) AS year,
    isodow(h) >= 6 AS weekend_flag,
    CAST(hour(h) AS INTEGER) AS hour
FROM span, generate_series(span.lo, span.hi, INTERVAL 1 HOUR) AS t(h)
WHERE span.lo IS NOT NULL
ORDER BY datetime_key
"""

# One row per gold listen (the gold table is already distinct); the user row is the one whose
# validity [activation, expiration) holds the listen's ts.
FACT_STREAMS: Final = f"""
SELECT
    l.eventId, l.sessionId, l.itemInSession, l.userId,
    u.user_key,
    md5({_song_id("l.")}) AS song_key,
    md5(l.artist) AS artist_key,
    {_place_key("l.")} AS location_key,
    CAST(epoch(date_trunc('hour', l.ts)) // 3600 AS BIGINT) AS datetime_key,
    l.ts, l.level, l.platform, l.msPlayed, l.listenPct, l.completed, l.skipped, l.rating,
    l.duration
FROM listens AS l
LEFT JOIN dim_users AS u
    ON u.userId = l.userId AND l.ts >= u.row_activation_date AND l.ts < u.row_expiration_date
ORDER BY l.ts, l.sessionId, l.itemInSession
"""

WIDE_STREAM: Final = """
SELECT
    f.*,
    u.firstName, u.lastName, u.gender, u.registration, u.level AS user_level,
    s.trackId, s.song, s.album, s.genre,
    a.name AS artist, a.location AS artist_location,
    loc.city, loc.state, loc.zip, loc.lat, loc.lon, loc.country,
    d.date, d.day_of_week, d.day_name, d.day_of_month, d.week_of_year, d.month, d.year,
    d.weekend_flag, d.hour
FROM fact_streams AS f
LEFT JOIN dim_users AS u USING (user_key)
LEFT JOIN dim_songs AS s USING (song_key)
LEFT JOIN dim_artists AS a ON a.artist_key = f.artist_key
LEFT JOIN dim_location AS loc USING (location_key)
LEFT JOIN dim_datetime AS d USING (datetime_key)
ORDER BY f.ts, f.sessionId, f.itemInSession
"""

_S, _I64, _I32, _F64, _B = pa.string(), pa.int64(), pa.int32(), pa.float64(), pa.bool_()
_TS = pa.timestamp("us", tz="UTC")


def _schema(*fields: tuple[str, pa.DataType] | tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(f[0], f[1], nullable=len(f) < 3) for f in fields])


_FACT: Final = (
    ("eventId", _S), ("sessionId", _I64), ("itemInSession", _I32), ("userId", _I64),
    ("user_key", _S), ("song_key", _S, False), ("artist_key", _S, False), ("location_key", _S),
    ("datetime_key", _I64, False), ("ts", _TS, False), ("level", _S), ("platform", _S),
    ("msPlayed", _I64), ("listenPct", _F64), ("completed", _B), ("skipped", _B),
    ("rating", _F64), ("duration", _F64),
)  # fmt: skip

SCHEMAS: Final[dict[str, pa.Schema]] = {
    "dim_users": _schema(
        ("user_key", _S, False), ("userId", _I64, False), ("level", _S, False),
        ("firstName", _S), ("lastName", _S), ("gender", _S), ("registration", _TS),
        ("row_activation_date", _TS, False), ("row_expiration_date", _TS, False),
        ("current_row", _B, False),
    ),
    "dim_songs": _schema(
        ("song_key", _S, False), ("trackId", _S), ("song", _S, False), ("artist", _S, False),
        ("artist_key", _S, False), ("duration", _F64), ("album", _S), ("genre", _S),
    ),
    "dim_artists": _schema(("artist_key", _S, False), ("name", _S, False), ("location", _S)),
    "dim_location": _schema(
        ("location_key", _S, False), ("city", _S), ("state", _S), ("zip", _S), ("lat", _F64),
        ("lon", _F64), ("country", _S),
    ),
    "dim_datetime": _schema(
        ("datetime_key", _I64, False), ("date_hour", _TS, False), ("date", pa.date32(), False),
        ("day_of_week", _I32, False), ("day_name", _S, False), ("day_of_month", _I32, False),
        ("week_of_year", _I32, False), ("month", _I32, False), ("year", _I32, False),
        ("weekend_flag", _B, False), ("hour", _I32, False),
    ),
    "fact_streams": _schema(*_FACT),
    "wide_stream": _schema(
        *_FACT,
        ("firstName", _S), ("lastName", _S), ("gender", _S), ("registration", _TS),
        ("user_level", _S), ("trackId", _S), ("song", _S), ("album", _S), ("genre", _S),
        ("artist", _S), ("artist_location", _S), ("city", _S), ("state", _S), ("zip", _S),
        ("lat", _F64), ("lon", _F64), ("country", _S), ("date", pa.date32()),
        ("day_of_week", _I32), ("day_name", _S), ("day_of_month", _I32),
        ("week_of_year", _I32), ("month", _I32), ("year", _I32), ("weekend_flag", _B),
        ("hour", _I32),
    ),
}  # fmt: skip

QUERIES: Final[dict[str, str]] = {
    "dim_users": DIM_USERS,
    "dim_songs": DIM_SONGS,
    "dim_artists": DIM_ARTISTS,
    "dim_location": DIM_LOCATION,
    "dim_datetime": DIM_DATETIME,
    "fact_streams": FACT_STREAMS,
    "wide_stream": WIDE_STREAM,
}
"""In build order: a query may read the tables built before it."""
