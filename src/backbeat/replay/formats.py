"""Which export a file is, and the files inside folders and zips.

``backbeat replay`` takes files, folders and zips (``my_spotify_data.zip`` as Spotify sends
it, read without unpacking). Each file is recognised by its name and then its first bytes:

| format | names | content |
|---|---|---|
| ``extended`` | ``Streaming_History_Audio_*.json``, ``endsong_*.json`` | a JSON list of objects with ``ts`` and ``ms_played`` |
| ``account`` | ``StreamingHistory*.json``, ``StreamingHistory_music_*.json`` | a JSON list with ``endTime`` and ``msPlayed`` |
| ``kaggle`` | ``*.csv`` | a header with ``spotify_track_uri`` and ``ms_played`` |
| ``eventsim`` | ``*.json``, ``*.jsonl``, ``*.log`` | NDJSON objects with ``page`` and ``sessionId`` |

Inside a folder or a zip, files that are not listening histories (``Userdata.json``,
playlists, podcast or video histories) are passed over and counted; a file given by name
that is none of these is refused with one line (``--format`` forces one).

Next: ``spotify.py`` and ``eventsim.py`` (the readers).
"""

from __future__ import annotations

import fnmatch
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Final

from backbeat.errors import SourceError


class Format(StrEnum):
    EXTENDED = "extended"
    ACCOUNT = "account"
    KAGGLE = "kaggle"
    EVENTSIM = "eventsim"


_NAMES: Final = (
    ("Streaming_History_Audio_*.json", Format.EXTENDED),
    ("endsong_*.json", Format.EXTENDED),
    ("StreamingHistory_music_*.json", Format.ACCOUNT),
    ("StreamingHistory[0-9]*.json", Format.ACCOUNT),
)
_NOT_HISTORY: Final = (
    "StreamingHistory_podcast_*.json",
    "Streaming_History_Video_*.json",
    "Userdata.json",
    "Identity.json",
    "Playlist*.json",
    "YourLibrary.json",
    "SearchQueries.json",
    "*.pdf",
    "*.html",
)
_SNIFF_BYTES: Final = 4096
ReadBytes = Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class Input:
    """One file of an export: where it came from, its bytes and its format."""

    name: str
    data: bytes
    format: Format


@dataclass(slots=True)
class Found:
    """The files to replay, and what was passed over (by reason)."""

    inputs: list[Input] = field(default_factory=list)
    passed_over: Counter[str] = field(default_factory=Counter)


def detect(name: str, data: bytes) -> Format | None:
    """The format of a file, by its name, else its first bytes; None if none fits."""
    base = PurePosixPath(name).name
    for pattern, fmt in _NAMES:
        if fnmatch.fnmatch(base, pattern):
            return fmt
    head = data[:_SNIFF_BYTES].lstrip()
    if head.startswith(b"["):
        if b'"ms_played"' in head and b'"ts"' in head:
            return Format.EXTENDED
        if b'"msPlayed"' in head and b'"endTime"' in head:
            return Format.ACCOUNT
        return None
    if head.startswith(b"{") and b'"page"' in head and b'"sessionId"' in head:
        return Format.EVENTSIM
    first = head.split(b"\n", 1)[0]
    if b"spotify_track_uri" in first and b"ms_played" in first:
        return Format.KAGGLE
    return None


def find(paths: Sequence[Path], forced: Format | None = None) -> Found:
    """Every history file in ``paths`` (files, folders, zips), with its format.

    Raises:
        SourceError: a path does not exist, or a file named directly is not a history.
    """
    found = Found()
    for path in paths:
        if path.is_dir():
            for member in sorted(p for p in path.rglob("*") if p.is_file()):
                _add(found, str(member), member.read_bytes, forced, direct=False)
        elif path.is_file() and zipfile.is_zipfile(path):
            for name, read in _zip_members(path):
                _add(found, name, read, forced, direct=False)
        elif path.is_file():
            _add(found, str(path), path.read_bytes, forced, direct=True)
        else:
            raise SourceError(f"{str(path)!r} does not exist: give a file, a folder or a zip")
    if not found.inputs:
        raise SourceError(
            f"no listening history in {', '.join(map(str, paths))} (looked for "
            "Streaming_History_Audio_*.json, endsong_*.json, StreamingHistory*.json, "
            "spotify_history.csv, eventsim NDJSON)"
        )
    return found


def _zip_members(path: Path) -> Iterator[tuple[str, ReadBytes]]:
    with zipfile.ZipFile(path) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if not info.is_dir():
                yield f"{path}:{info.filename}", _reader(path, info.filename)


def _reader(path: Path, member: str) -> ReadBytes:
    def read() -> bytes:
        with zipfile.ZipFile(path) as archive:
            return archive.read(member)

    return read


def _add(found: Found, name: str, read: ReadBytes, forced: Format | None, direct: bool) -> None:
    base = PurePosixPath(name.replace(":", "/")).name
    if not direct and any(fnmatch.fnmatch(base, p) for p in _NOT_HISTORY):
        found.passed_over[_kind(base)] += 1
        return
    data = read()
    fmt = forced or detect(name, data)
    if fmt is None:
        if direct:
            raise SourceError(
                f"{name!r} is not a listening history backbeat reads; give --format "
                f"({', '.join(f.value for f in Format)}) if it is one"
            )
        found.passed_over["not a listening history"] += 1
        return
    found.inputs.append(Input(name, data, fmt))


def _kind(base: str) -> str:
    if "podcast" in base.lower():
        return "podcast history file"
    if "video" in base.lower():
        return "video history file"
    return "not a listening history"
