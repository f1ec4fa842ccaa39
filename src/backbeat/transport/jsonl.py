"""JSONL files as a source: one file per topic, position = byte offset.

A file's topic is its name without ``.jsonl`` (``listen_events.jsonl``). ``backbeat stream``
refuses a file named otherwise (:func:`named_after_topics`: it says how to name it, and that an
export goes through ``backbeat replay``); the source itself still reads one, and its records
become dead letters (``unknown_topic``). With ``follow`` only complete lines are handed out, so
a file that is still being written is safe to stream; without it a file is read to its end, a
last line without a newline included. Files share each poll's budget. A restart resumes at the
stored byte offset of every file, so inputs are regular files (not devices or pipes).

Next: ``base.py`` (the contract), ``backbeat.engine.pipeline`` (the caller).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import numpy as np

from backbeat.errors import SourceError
from backbeat.events.schema import Topic, parse_topic
from backbeat.transport.base import RawSlice, Slice, Source, SourceSpec

_READ_CHUNK = 8 << 20
_NAMING: Final = (
    "name each file after the topic it holds ("
    + ", ".join(f"{t.value}.jsonl" for t in Topic)
    + "); an export (a Spotify history, Kaggle's spotify_history.csv, eventsim's NDJSON) goes "
    "through `backbeat replay FILE --format FORMAT`"
)


def discover(inputs: Sequence[Path]) -> list[Path]:
    """The JSONL files named by ``inputs`` (files, or folders holding ``*.jsonl``), in order.

    Raises:
        SourceError: an input does not exist or is not a regular file (a device, a pipe), or
            there is no file at all.
    """
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files.extend(sorted(path.glob("*.jsonl")))
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise SourceError(
                f"input {str(path)!r} is not a regular file (a device or a pipe): backbeat "
                "resumes a file at a byte offset, so give .jsonl files or a folder of them"
            )
        else:
            raise SourceError(f"input {str(path)!r} does not exist: give a .jsonl file or a folder")
    if not files:
        raise SourceError(f"no .jsonl files in {', '.join(map(str, inputs))}: {_NAMING}")
    return files


def named_after_topics(files: Sequence[Path]) -> list[Path]:
    """``files`` if every one is named ``<topic>.jsonl`` after one of backbeat's topics.

    Raises:
        SourceError: naming the files that are not, how to name them, and where exports go.
    """
    wrong = [str(p) for p in files if p.suffix != ".jsonl" or parse_topic(p.stem) is None]
    if wrong:
        shown = ", ".join(repr(w) for w in wrong[:3]) + (
            f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        )
        verb = "is" if len(wrong) == 1 else "are"
        raise SourceError(f"{shown} {verb} not named after a topic: {_NAMING}")
    return list(files)


class JsonlSource(Source):
    """Reads newline-delimited JSON files, one partition per file."""

    def __init__(
        self, files: Sequence[Path], chunk_bytes: int = _READ_CHUNK, follow: bool = False
    ) -> None:
        """``follow=True`` keeps waiting for new lines (like ``tail -f``): never exhausted."""
        self._files = [p.resolve() for p in files]
        self._follow = follow
        self._chunk = chunk_bytes
        self._pos: dict[str, int] = {}
        self._exhausted = False

    def open(self, positions: Mapping[str, int]) -> None:
        for path in self._files:
            self._pos[str(path)] = int(positions.get(str(path), 0))

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def spec(self) -> SourceSpec:
        return SourceSpec("jsonl", {"files": [str(p) for p in self._files], "follow": self._follow})

    def partitions(self) -> dict[str, str]:
        """Files that may still deliver (all of them when following), with their topics."""
        return {
            str(p): p.name.removesuffix(".jsonl")
            for p in self._files
            if self._follow or self._pos.get(str(p), 0) < _size(p)
        }

    def poll(self, max_events: int) -> list[Slice]:
        """Lines from every open file, the budget shared between them (none starves)."""
        slices: list[Slice] = []
        open_files = [p for p in self._files if str(p) in self.partitions()]
        share = max(1, max_events // max(1, len(open_files)))
        for path in open_files:
            piece = self._read(path, share)
            if piece is not None:
                slices.append(piece)
        self._exhausted = not self._follow and not slices and not self.partitions()
        return slices

    def _read(self, path: Path, max_lines: int) -> RawSlice | None:
        key = str(path)
        start = self._pos[key]
        with path.open("rb") as fh:
            fh.seek(start)
            data = fh.read(max(self._chunk, max_lines * 512))
            while data and b"\n" not in data:  # a line longer than the chunk
                more = fh.read(self._chunk)
                if not more:
                    break
                data += more
            at_eof = not fh.read(1)
        if data and not data.endswith(b"\n") and at_eof and not self._follow:
            data += b"\n"  # a complete file whose last line has no newline
        end = data.rfind(b"\n")
        if end < 0:
            return None
        lines = data[:end].split(b"\n")
        if len(lines) > max_lines:
            lines = lines[:max_lines]
        lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) + 1
        ends = np.cumsum(lengths)
        offsets = start + ends - lengths
        next_position = min(start + int(ends[-1]), _size(path))
        self._pos[key] = next_position
        return RawSlice(
            topic=path.name.removesuffix(".jsonl"),
            partition=key,
            payloads=[ln.rstrip(b"\r") for ln in lines] if b"\r" in data else lines,
            offsets=offsets,
            next_position=next_position,
        )


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
