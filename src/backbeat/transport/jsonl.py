"""JSONL files as a source: one file per topic, position = byte offset.

A file's topic is its name without ``.jsonl`` (``listen_events.jsonl``); a file named after a
topic backbeat does not know is still read, and its records become dead letters
(``unknown_topic``). Only complete lines are handed out, so a file that is still being written
is safe to stream; a restart resumes at the stored byte offset of every file.

Next: ``base.py`` (the contract), ``backbeat.engine.pipeline`` (the caller).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from backbeat.errors import SourceError
from backbeat.transport.base import RawSlice, Slice, Source

_READ_CHUNK = 8 << 20


def discover(inputs: Sequence[Path]) -> list[Path]:
    """The JSONL files named by ``inputs`` (files, or folders holding ``*.jsonl``), sorted."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files.extend(sorted(path.glob("*.jsonl")))
        elif path.is_file():
            files.append(path)
        else:
            raise SourceError(f"input {str(path)!r} does not exist: give a .jsonl file or a folder")
    if not files:
        raise SourceError(f"no .jsonl files in {', '.join(map(str, inputs))}")
    return files


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

    def poll(self, max_events: int) -> list[Slice]:
        slices: list[Slice] = []
        budget = max_events
        for path in self._files:
            if budget <= 0:
                break
            piece = self._read(path, budget)
            if piece is not None:
                slices.append(piece)
                budget -= len(piece.payloads)
        self._exhausted = (
            not self._follow
            and not slices
            and all(self._pos[str(p)] >= _size(p) for p in self._files)
        )
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
        end = data.rfind(b"\n")
        if end < 0:
            return None
        lines = data[:end].split(b"\n")
        if len(lines) > max_lines:
            lines = lines[:max_lines]
        lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) + 1
        ends = np.cumsum(lengths)
        offsets = start + ends - lengths
        next_position = start + int(ends[-1])
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
