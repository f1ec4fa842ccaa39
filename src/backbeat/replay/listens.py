"""A listener's plays as backbeat listen events: sessions, ids, and what the catalog knows.

Every rule here is written down in ``docs/replay.md``; in short, for one listener's plays:

- ``ts`` (the event's time) is when playback started: the export's stop time minus
  ``ms_played``; plays are ordered by it.
- A session is a run of plays with no more than ``gap_ms`` (default 30 min) between the end of
  one and the start of the next; ``itemInSession`` counts plays in order from 0, and
  ``sessionId`` is a hash of the listener and the session's start, below 2**31 (the int
  Streamify's schema reads), so the same history always gets the same sessions.
- ``eventId`` is ``s-<userId>-<start>-<ms_played>-<track>`` (the track as 8 hex digits of a
  hash of artist and title): the same play imported twice is the same event.
- Where the catalog knows the track (by Spotify id, else by artist and title), it gives
  ``duration``, ``genre`` and ``mood``; ``listenPct`` is then ``ms_played / duration`` (at
  most 1) and ``completed`` is ``listenPct >= 0.99``. Where it does not, ``completed`` is the
  export's ``reason_end == "trackdone"`` and the share listened stays unknown.
- ``skipped`` is the export's own flag where it has one, unknown otherwise, and false for a
  play that reached the end; ``platform`` is mapped to backbeat's seven (``docs/replay.md``),
  ``country`` is the connection's; ``auth`` is "Logged In" and ``level`` unknown (exports do
  not say).

All of it is Arrow and NumPy over whole columns (no Python per play); only the catalog's
join runs in DuckDB.

Next: ``spotify.py`` (the plays), ``source.py`` (the events, replayed in order).
"""

from __future__ import annotations

import hashlib
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.events.schema import Topic, arrow_schema
from backbeat.scratch import scratch

SESSION_GAP_MS: Final = 30 * 60_000
SESSION_SPACE: Final = 2**31
_PLATFORMS: Final = (
    ("android auto", "car"), ("carplay", "car"), ("car", "car"),
    ("ios", "ios"), ("iphone", "ios"), ("ipad", "ios"),
    ("android", "android"),
    ("web", "web"), ("browser", "web"),
    ("tv", "tv"), ("playstation", "tv"), ("xbox", "tv"), ("roku", "tv"), ("chromecast", "tv"),
    ("sonos", "speaker"), ("speaker", "speaker"), ("echo", "speaker"), ("cast", "speaker"),
    ("windows", "desktop"), ("os x", "desktop"), ("osx", "desktop"), ("macos", "desktop"),
    ("linux", "desktop"), ("desktop", "desktop"),
)  # fmt: skip
"""Substrings of the export's platform text (lower case), first match wins."""
_KNOWN: Final = pa.schema(
    [
        ("track_id", pa.string()),
        ("artist_key", pa.string()),
        ("song_key", pa.string()),
        ("duration", pa.float64()),
        ("genre", pa.string()),
        ("mood", pa.string()),
    ]
)
"""What the catalog knows of a track (``backbeat.replay.catalog.lookup``)."""
_JOIN: Final = """
SELECT coalesce(by_id.duration, by_name.duration) AS duration,
       coalesce(by_id.genre, by_name.genre) AS genre,
       coalesce(by_id.mood, by_name.mood) AS mood
FROM _plays p
LEFT JOIN (SELECT DISTINCT ON (track_id) * FROM _catalog WHERE track_id IS NOT NULL) by_id
       ON by_id.track_id = p.track_id
LEFT JOIN (SELECT DISTINCT ON (artist_key, song_key) * FROM _catalog) by_name
       ON by_name.artist_key = lower(p.artist) AND by_name.song_key = lower(p.track)
ORDER BY p.row
"""


def user_id_of(name: str) -> int:
    """A listener's ``userId``: the number itself when ``name`` is one, else a stable hash
    of the name (below 2**53, so JavaScript reads it exactly)."""
    if name.isdigit() and len(name) < 16:
        return int(name)
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**53)


def platform_of(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Export platform texts (``"Android OS 9 API 28"``, ``"web_player windows"``) as
    backbeat's platforms; null where none fits. Each distinct text is judged once."""
    coded = pc.dictionary_encode(pc.utf8_lower(pc.fill_null(text, "")))
    if isinstance(coded, pa.ChunkedArray):
        coded = coded.unify_dictionaries().combine_chunks()
    mapped = [
        next((value for needle, value in _PLATFORMS if needle in t), None)
        for t in coded.dictionary.to_pylist()
    ]
    return pa.array(mapped, pa.string()).take(coded.indices)


def _mix(*parts: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """A stable 64-bit hash of integer columns (splitmix64 over each part in turn)."""
    out = np.full(len(parts[0]), 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for part in parts:
            x = out ^ part.astype(np.uint64)
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            out = x ^ (x >> np.uint64(31))
    return out


def _track_tags(plays: pa.Table) -> pa.Array:
    """8 hex digits per play naming its track (a hash of artist and title, computed once per
    distinct track)."""
    key = pc.binary_join_element_wise(
        pc.fill_null(plays.column("artist"), ""), pc.fill_null(plays.column("track"), ""), "\x1f"
    )
    coded = pc.dictionary_encode(key)
    if isinstance(coded, pa.ChunkedArray):
        coded = coded.unify_dictionaries().combine_chunks()
    tags = [
        hashlib.blake2b(k.encode(), digest_size=4).hexdigest() for k in coded.dictionary.to_pylist()
    ]
    return pa.array(tags, pa.string()).take(coded.indices)


def _ordered(plays: pa.Table, gap_ms: int) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The plays ordered by start (ties: stop, then length, then as given), with their start
    times, and each play's session start and item number."""
    start = pc.max_element_wise(pc.subtract(plays.column("end_ms"), plays.column("ms_played")), 0)
    begin = start.to_numpy()
    end = plays.column("end_ms").to_numpy()
    order = np.lexsort((plays.column("ms_played").to_numpy(), end, begin))
    if np.any(order[1:] < order[:-1]):  # most exports come in order already
        plays, begin, end = plays.take(pa.array(order)), begin[order], end[order]
    n = len(begin)
    if n == 0:
        return plays, begin, np.zeros(0, dtype=np.int64)
    ended = np.maximum.accumulate(end)  # the latest end so far: overlapping plays count
    opens = np.ones(n, dtype=bool)
    opens[1:] = begin[1:] - ended[:-1] > gap_ms
    rows = np.arange(n)
    first = np.maximum.accumulate(np.where(opens, rows, 0))
    return plays, begin, rows - first


def _known(plays: pa.Table, catalog: pa.Table) -> pa.Table:
    """``duration``, ``genre`` and ``mood`` of each play, from the catalog (row order kept)."""
    con = scratch()
    con.register("_plays", plays.append_column("row", pa.array(np.arange(plays.num_rows))))
    con.register("_catalog", catalog.cast(_KNOWN))
    try:
        return con.sql(_JOIN).to_arrow_table()
    finally:
        con.unregister("_plays")
        con.unregister("_catalog")


def listen_events(
    plays: pa.Table,
    user_id: int,
    catalog: pa.Table | None = None,
    gap_ms: int = SESSION_GAP_MS,
) -> pa.Table:
    """One listener's plays (``spotify.PLAYS``) as listen events (``arrow_schema(LISTEN)``),
    ordered by ``ts``.

    Args:
        plays: the listener's plays.
        user_id: their ``userId``.
        catalog: what is known of tracks (:func:`backbeat.replay.catalog.lookup`).
        gap_ms: the inactivity that ends a session.
    """
    plays, begin, item = _ordered(plays, gap_ms)
    n = plays.num_rows
    firsts = np.flatnonzero(item == 0)
    session_start = begin[np.repeat(firsts, np.diff(np.r_[firsts, n]))] if n else begin
    user = np.full(n, user_id, dtype=np.uint64)
    session = (_mix(user, session_start.astype(np.uint64)) % np.uint64(SESSION_SPACE)).astype(
        np.int64
    )
    played = plays.column("ms_played")
    event_id = pc.binary_join_element_wise(
        f"s-{user_id}",
        pc.cast(pa.array(begin), pa.string()),
        pc.cast(played, pa.string()),
        _track_tags(plays),
        "-",
    )
    known = _known(plays, catalog) if catalog is not None and n else None
    duration = known.column("duration") if known is not None else pa.nulls(n, pa.float64())
    pct = pc.if_else(
        pc.greater(duration, 0),
        pc.min_element_wise(
            pc.divide(pc.cast(played, pa.float64()), pc.multiply(duration, 1000.0)), 1.0
        ),
        pa.scalar(None, pa.float64()),
    )
    skipped = plays.column("skipped")
    export_done = pc.and_(
        pc.fill_null(pc.equal(plays.column("reason_end"), "trackdone"), False),
        pc.invert(pc.fill_null(skipped, False)),
    )
    completed = pc.if_else(pc.is_valid(pct), pc.greater_equal(pct, 0.99), export_done)
    country = plays.column("country")
    nothing = pa.nulls(n, pa.string())
    columns = {
        "ts": pa.array(begin, pa.int64()),
        "eventId": event_id,
        "schemaVersion": pa.array(np.ones(n, dtype=np.int32)),
        "sessionId": pa.array(session),
        "itemInSession": pa.array(item.astype(np.int32)),
        "level": nothing,
        "auth": pa.repeat("Logged In", n),
        "userId": pa.array(np.full(n, user_id, dtype=np.int64)),
        "artist": plays.column("artist"),
        "song": plays.column("track"),
        "duration": duration,
        "trackId": plays.column("track_id"),
        "album": plays.column("album"),
        "genre": known.column("genre") if known is not None else nothing,
        "platform": platform_of(plays.column("platform")),
        "country": pc.if_else(
            pc.fill_null(pc.match_substring_regex(country, "^[A-Z][A-Z]$"), False),
            country,
            pa.scalar(None, pa.string()),
        ),
        "mood": known.column("mood") if known is not None else nothing,
        "msPlayed": played,
        "listenPct": pct,
        "completed": completed,
        "skipped": pc.if_else(completed, False, skipped),
    }
    schema = arrow_schema(Topic.LISTEN)
    return pa.table(
        [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema],
        schema=schema.with_metadata(None),
    )
