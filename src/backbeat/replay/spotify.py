"""Spotify listening histories, read into one table of plays whatever the export's shape.

Three shapes exist in the wild (their documented fields, and how each maps, are in
``docs/replay.md``):

- "Extended streaming history" (``Streaming_History_Audio_*.json``, older ``endsong_*.json``):
  a JSON list of plays with ``ts`` (when playback stopped), ``ms_played``, ``conn_country``,
  ``platform``, ``master_metadata_*``, ``spotify_track_uri``, ``reason_start``, ``reason_end``,
  ``shuffle``, ``skipped``; podcast episodes and audiobook chapters are counted apart.
- Account data (``StreamingHistory*.json``, ``StreamingHistory_music_*.json``): ``endTime``
  (``YYYY-MM-DD HH:MM``), ``artistName``, ``trackName``, ``msPlayed``.
- The Kaggle/Maven ``spotify_history.csv``: ``spotify_track_uri, ts, platform, ms_played,
  track_name, artist_name, album_name, reason_start, reason_end, shuffle, skipped``.

Each reader returns :class:`Plays`: a table of :data:`PLAYS` (one row per music play, times in
epoch ms) and counts of what was not music or could not be read, by reason. Times are parsed
in every variant seen (with or without seconds, ``T``/``Z``, fractions, re-saved by a
spreadsheet as ``M/D/YYYY H:MM``), all as UTC.

Next: ``listens.py`` (plays -> listen events), ``formats.py`` (which reader a file needs).
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from backbeat.errors import SourceError

PLAYS: Final = pa.schema(
    [
        ("end_ms", pa.int64()),  # when playback stopped
        ("ms_played", pa.int64()),
        ("track", pa.string()),
        ("artist", pa.string()),
        ("album", pa.string()),
        ("track_id", pa.string()),  # Spotify's id (the uri without "spotify:track:")
        ("platform", pa.string()),
        ("country", pa.string()),
        ("reason_start", pa.string()),
        ("reason_end", pa.string()),
        ("shuffle", pa.bool_()),
        ("skipped", pa.bool_()),
        ("username", pa.string()),
    ]
)
_TIME_FORMATS: Final = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
)
_URI_PREFIX: Final = "spotify:track:"


@dataclass(slots=True)
class Plays:
    """Music plays read from some files, and what was left out, by reason."""

    table: pa.Table
    left_out: Counter[str] = field(default_factory=Counter)

    @staticmethod
    def join(parts: list[Plays]) -> Plays:
        counts: Counter[str] = Counter()
        for part in parts:
            counts.update(part.left_out)
        tables = [p.table for p in parts if p.table.num_rows]
        return Plays(pa.concat_tables(tables) if tables else PLAYS.empty_table(), counts)


def parse_times(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Epoch ms (UTC) of timestamps written in any of the shapes exports use; null where none
    fits. A trailing ``Z``, fractions of a second and spaces around are accepted.

    Whole columns in one plain shape (the common case) are read in one pass per shape; only
    the values none of them reads go through the slower cleaning of ``Z`` and fractions."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    plain = pc.multiply(_seconds(text), 1000)
    rest = pc.and_(pc.is_null(plain), pc.is_valid(text))
    if not pc.any(rest).as_py():
        return plain
    return pc.replace_with_mask(plain, rest, _cleaned_times(text.filter(rest)))


def _seconds(values: pa.Array) -> pa.Array:
    """Epoch seconds of values in one of :data:`_TIME_FORMATS`; null where none fits."""
    out = pc.strptime(values, format=_TIME_FORMATS[0], unit="s", error_is_null=True)
    for fmt in _TIME_FORMATS[1:]:
        missing = pc.and_(pc.is_null(out), pc.is_valid(values))
        if not pc.any(missing).as_py():
            break  # every time read: the other shapes need no pass
        parsed = pc.strptime(values.filter(missing), format=fmt, unit="s", error_is_null=True)
        out = pc.replace_with_mask(out, missing, parsed)
    return pc.cast(out, pa.int64())


def _cleaned_times(text: pa.Array) -> pa.Array:
    """Epoch ms of values with spaces around, a trailing ``Z`` or a fraction of a second."""
    values = pc.replace_substring_regex(pc.utf8_trim_whitespace(text), r"Z$", "")
    fraction = pc.extract_regex(values, r"^(?P<head>[^.]*)\.(?P<frac>\d{1,6})$")
    has_fraction = pc.is_valid(fraction)
    head = pc.if_else(has_fraction, pc.struct_field(fraction, "head"), values)
    millis = pc.if_else(
        has_fraction,
        pc.cast(
            pc.utf8_slice_codeunits(
                pc.binary_join_element_wise(pc.struct_field(fraction, "frac"), "000", ""), 0, 3
            ),
            pa.int64(),
        ),
        pa.scalar(0, pa.int64()),
    )
    result: pa.Array = pc.add(pc.multiply(_seconds(head), 1000), millis)
    return result


def _bool(values: pa.ChunkedArray) -> pa.Array:
    """``TRUE``/``FALSE`` (any case), ``true``/``false``, ``1``/``0``; null otherwise."""
    text = pc.utf8_lower(pc.cast(values, pa.string()))
    return pc.if_else(
        pc.is_in(text, pa.array(["true", "1"])),
        True,
        pc.if_else(pc.is_in(text, pa.array(["false", "0"])), False, pa.scalar(None, pa.bool_())),
    )


def _ints(values: pa.ChunkedArray) -> pa.Array:
    """Whole numbers written as text; null where a value is not one."""
    text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    ok = pc.and_(pc.utf8_is_digit(text), pc.less_equal(pc.utf8_length(text), 15))
    number = pc.cast(pc.if_else(ok, text, "0"), pa.int64())
    result: pa.Array = pc.if_else(ok, number, pa.scalar(None, pa.int64()))
    return result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result


def _track_ids(uris: pa.ChunkedArray | pa.Array) -> pa.Array:
    text = pc.cast(uris, pa.string())
    stripped = pc.replace_substring_regex(text, f"^{_URI_PREFIX}", "")
    return pc.if_else(pc.equal(pc.utf8_length(stripped), 0), pa.scalar(None, pa.string()), stripped)


def _finish(columns: dict[str, Any], left_out: Counter[str]) -> Plays:
    """A :class:`Plays` from columns named as :data:`PLAYS` (missing ones null); rows
    without a readable stop time or track are counted out."""
    n = len(next(iter(columns.values())))
    table = pa.table(
        {
            f.name: pa.array(columns[f.name], f.type)
            if isinstance(columns.get(f.name), list)
            else (pc.cast(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type))
            for f in PLAYS
        },
        schema=PLAYS,
    )
    no_time = pc.is_null(table.column("end_ms"))
    no_track = pc.or_(pc.is_null(table.column("track")), pc.is_null(table.column("artist")))
    bad_ms = pc.or_kleene(
        pc.is_null(table.column("ms_played")), pc.less(table.column("ms_played"), 0)
    )
    dropped = 0
    for reason, mask in (
        ("no readable time", no_time),
        ("no track or artist", pc.and_not(no_track, no_time)),
        ("no ms_played", pc.and_not(bad_ms, pc.or_(no_time, no_track))),
    ):
        count = pc.sum(pc.cast(mask, pa.int64())).as_py() or 0
        if count:
            left_out[reason] += count
            dropped += count
    if not dropped:
        return Plays(table, left_out)  # every row readable: nothing to filter
    keep = pc.invert(pc.or_(pc.or_(no_time, no_track), pc.fill_null(bad_ms, True)))
    return Plays(table.filter(keep), left_out)


def read_extended(data: bytes, name: str) -> Plays:
    """A "Extended streaming history" file (``Streaming_History_Audio_*``, ``endsong_*``).

    Raises:
        SourceError: not a JSON list of objects.
    """
    rows = _json_list(data, name)
    left_out: Counter[str] = Counter()
    music = []
    for row in rows:
        if row.get("spotify_track_uri") or row.get("master_metadata_track_name"):
            music.append(row)
        elif row.get("episode_name") or row.get("spotify_episode_uri"):
            left_out["podcast episode"] += 1
        elif row.get("audiobook_title") or row.get("audiobook_uri"):
            left_out["audiobook chapter"] += 1
        else:
            left_out["no track or artist"] += 1
    if not music:
        return Plays(PLAYS.empty_table(), left_out)

    def column(key: str) -> list[Any]:
        return [row.get(key) for row in music]

    return _finish(
        {
            "end_ms": parse_times(pa.array(column("ts"), pa.string())),
            "ms_played": pa.array(column("ms_played"), pa.int64()),
            "track": column("master_metadata_track_name"),
            "artist": column("master_metadata_album_artist_name"),
            "album": column("master_metadata_album_album_name"),
            "track_id": _track_ids(pa.array(column("spotify_track_uri"), pa.string())),
            "platform": column("platform"),
            "country": column("conn_country"),
            "reason_start": column("reason_start"),
            "reason_end": column("reason_end"),
            "shuffle": pa.array(column("shuffle"), pa.bool_()),
            "skipped": pa.array(column("skipped"), pa.bool_()),
            "username": column("username"),
        },
        left_out,
    )


def read_account(data: bytes, name: str) -> Plays:
    """An account-data ``StreamingHistory*.json`` file (``endTime``, ``artistName``,
    ``trackName``, ``msPlayed``).

    Raises:
        SourceError: not a JSON list of objects.
    """
    rows = _json_list(data, name)
    if not rows:
        return Plays(PLAYS.empty_table())
    return _finish(
        {
            "end_ms": parse_times(pa.array([r.get("endTime") for r in rows], pa.string())),
            "ms_played": pa.array([r.get("msPlayed") for r in rows], pa.int64()),
            "track": [r.get("trackName") for r in rows],
            "artist": [r.get("artistName") for r in rows],
        },
        Counter(),
    )


KAGGLE_COLUMNS: Final = (
    "spotify_track_uri", "ts", "platform", "ms_played", "track_name", "artist_name",
    "album_name", "reason_start", "reason_end", "shuffle", "skipped",
)  # fmt: skip


def read_kaggle(data: bytes, name: str) -> Plays:
    """The Kaggle/Maven ``spotify_history.csv`` (``ts`` = when the track stopped).

    Raises:
        SourceError: not a CSV with the documented header.
    """
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(KAGGLE_COLUMNS, pa.string()),
                include_columns=list(KAGGLE_COLUMNS),
            ),
        )
    except (pa.ArrowInvalid, KeyError) as exc:
        raise SourceError(
            f"{name}: not a spotify_history.csv ({', '.join(KAGGLE_COLUMNS)}): {exc}"
        ) from None
    return _finish(
        {
            "end_ms": parse_times(table.column("ts")),
            "ms_played": _ints(table.column("ms_played")),
            "track": table.column("track_name"),
            "artist": table.column("artist_name"),
            "album": table.column("album_name"),
            "track_id": _track_ids(table.column("spotify_track_uri")),
            "platform": table.column("platform"),
            "reason_start": table.column("reason_start"),
            "reason_end": table.column("reason_end"),
            "shuffle": _bool(table.column("shuffle")),
            "skipped": _bool(table.column("skipped")),
        },
        Counter(),
    )


def _json_list(data: bytes, name: str) -> list[dict[str, Any]]:
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{name}: not JSON ({exc})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise SourceError(f"{name}: not a JSON list of plays")
    return rows
