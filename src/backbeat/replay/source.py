"""A replayed history as an engine source: each stream of events in event-time order, with a
position that makes a second import add only what is new.

Each :class:`Stream` is one partition (``replay:<listener>`` for a Spotify history, one per
topic for eventsim output) holding its events sorted by ``ts``. The position stored with the
results is the event time the partition has reached: everything stamped before it was
delivered. Equal times are never split across slices, so a restart, a second import of the
same file, or a newer export that contains the old one resumes exactly after what the store
already has (and, being a partition of its own, a history older than what a store holds is a
backfill, judged late by nothing). With ``speed`` the events come out at that many times the
wall clock, shifted by ``shift_ms`` (``--shift-to now`` replays a history as if it were live).

Next: ``backbeat.wiring.replay`` (building it from files), ``backbeat.transport.base``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.events.schema import Topic
from backbeat.transport.base import ArrowSlice, Slice, Source

PREFIX = "replay:"


@dataclass(frozen=True, slots=True)
class Stream:
    """One partition of a replay: its name, its topic and its events sorted by ``ts``."""

    name: str
    topic: Topic
    table: pa.Table

    @property
    def times(self) -> np.ndarray:
        times: np.ndarray = self.table.column("ts").to_numpy()
        return times


def resume_at(times: np.ndarray, position: int | None) -> int:
    """The first row not delivered yet when the partition stands at ``position`` (an event
    time: every row stamped before it was delivered)."""
    return 0 if position is None else int(np.searchsorted(times, position, side="left"))


def cut(times: np.ndarray, start: int, budget: int) -> int:
    """Where a slice from ``start`` of at most about ``budget`` rows ends, never splitting
    rows of the same time (a slice may then be longer than ``budget``)."""
    stop = min(start + max(budget, 1), len(times))
    if stop < len(times):
        stop = int(np.searchsorted(times, times[stop - 1], side="right"))
    return stop


class ReplaySource(Source):
    """Replays streams of events in event-time order, resumable by event time."""

    def __init__(
        self, streams: Sequence[Stream], speed: float | None = None, shift_ms: int = 0
    ) -> None:
        self._streams = {s.name: s for s in streams}
        self._times = {s.name: s.times for s in streams}
        self._next: dict[str, int] = {}
        self._speed = speed
        self._shift_ms = shift_ms
        self._clock: tuple[float, int] | None = None  # (monotonic s, event ms) at the start

    def open(self, positions: Mapping[str, int]) -> None:
        for name, times in self._times.items():
            self._next[name] = resume_at(times, positions.get(name))
        if self._speed is not None:
            firsts = [int(t[i]) for n, t in self._times.items() if (i := self._next[n]) < len(t)]
            if firsts:
                self._clock = (time.monotonic(), min(firsts))

    @property
    def exhausted(self) -> bool:
        return all(self._next[n] >= len(t) for n, t in self._times.items())

    def partitions(self) -> dict[str, str]:
        return {
            n: self._streams[n].topic.value
            for n, t in self._times.items()
            if self._next.get(n, 0) < len(t)
        }

    def _due_ms(self) -> int | None:
        """Event time the wall clock has reached (None: no pacing)."""
        if self._clock is None or self._speed is None:
            return None
        started, first = self._clock
        return first + int((time.monotonic() - started) * 1000 * self._speed)

    def poll(self, max_events: int) -> list[Slice]:
        due = self._due_ms()
        open_names = [n for n in self._times if self._next[n] < len(self._times[n])]
        share = max(1, max_events // max(1, len(open_names)))
        slices: list[Slice] = []
        for name in open_names:
            times, start = self._times[name], self._next[name]
            stop = cut(times, start, share)
            if due is not None:
                stop = min(stop, int(np.searchsorted(times, due, side="right")))
                if stop <= start:
                    continue
                stop = cut(times, start, stop - start) if stop < len(times) else stop
            table = self._streams[name].table.slice(start, stop - start)
            if self._shift_ms:
                table = table.set_column(0, "ts", pc.add(table.column("ts"), self._shift_ms))
            self._next[name] = stop
            next_position = int(times[stop - 1]) + 1
            slices.append(
                ArrowSlice(
                    topic=self._streams[name].topic.value,
                    partition=name,
                    table=table,
                    offsets=np.arange(start, stop, dtype=np.int64),
                    next_position=next_position,
                )
            )
        if not slices and due is not None and not self.exhausted:
            time.sleep(0.05)
        return slices
