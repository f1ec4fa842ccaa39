"""The source contract: what the engine pulls batches from.

A source hands out raw messages (bytes, for JSONL files and Kafka) or already-typed Arrow
tables (the in-process simulator), each slice tagged with its topic, its partition and the
position to resume from after it. The engine stores positions with its results in one
transaction and passes them back to :meth:`Source.open` on restart: that is the whole
exactly-once contract a source must honour (replay from a position yields the same messages).

Next: ``jsonl.py`` (files), ``inprocess.py`` (the simulator), ``backbeat.engine.pipeline``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from backbeat.events.codec import Decoded


@dataclass(frozen=True, slots=True)
class RawSlice:
    """Consecutive raw messages from one partition.

    Attributes:
        topic: the topic name as the source knows it (may be one backbeat does not know).
        partition: a stable name for the ordered stream the messages come from.
        payloads: one message each (a JSON document, no trailing newline).
        offsets: each message's position in the partition, increasing.
        next_position: where to resume after this slice.
        decoded: ``decode_batch(topic, payloads, offsets)`` when the source already did it
            (on its read-ahead thread); None: the engine decodes.
    """

    topic: str
    partition: str
    payloads: Sequence[bytes]
    offsets: npt.NDArray[np.int64]
    next_position: int
    decoded: Decoded | None = None


@dataclass(frozen=True, slots=True)
class ArrowSlice:
    """Consecutive typed events from one partition (in-process sources)."""

    topic: str
    partition: str
    table: pa.Table
    offsets: npt.NDArray[np.int64]
    next_position: int


Slice = RawSlice | ArrowSlice

OnAssigned = Callable[[Sequence[str]], Mapping[str, int]]
"""Called with partitions a source was just given; returns where to resume each (absent =
the source's start)."""
OnRevoked = Callable[[Sequence[str]], None]
"""Called with partitions a source just lost."""


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What a source reads, as plain data another engine can read it from (the Spark engine
    reads the same files or partitions with its own readers, named and positioned alike).

    Attributes:
        kind: ``jsonl`` or ``kafka``.
        options: what the kind needs (JSON-serializable).
    """

    kind: str
    options: Mapping[str, Any]


class Source(ABC):
    """A replayable, positioned stream of event slices."""

    @abstractmethod
    def open(self, positions: Mapping[str, int]) -> None:
        """Start reading; resume each partition at its stored position (absent = start)."""

    @abstractmethod
    def poll(self, max_events: int) -> list[Slice]:
        """Up to about ``max_events`` messages as slices; ``[]`` if none are ready now."""

    @property
    @abstractmethod
    def exhausted(self) -> bool:
        """True once a bounded source has handed out everything."""

    def partitions(self) -> Mapping[str, str] | None:
        """Partitions that may still deliver (partition -> topic); None if not known.

        Watermarks are the minimum over these, so a partition that has not delivered yet
        holds its topic's watermark back instead of being overtaken, and a finished one no
        longer does.
        """
        return None

    def lag(self) -> Mapping[str, int] | None:
        """Records each partition holds beyond what this source has handed out (partition
        -> count), as last seen; None if the source cannot tell. Any thread may ask."""
        return None

    def spec(self) -> SourceSpec | None:
        """What this source reads, for engines that read it themselves; None if it cannot
        be described (an in-process simulator)."""
        return None

    def listen(self, on_assigned: OnAssigned, on_revoked: OnRevoked) -> bool:
        """Ask to be told when partitions come and go (a Kafka consumer group).

        Returns True if this source will announce its partitions that way (then the
        positions given to :meth:`open` are not used: ``on_assigned`` answers instead), False
        if its partitions are fixed. Both callbacks run inside :meth:`poll`, between batches.
        """
        return False

    def seek(self, positions: Mapping[str, int | None]) -> None:
        """Resume at these positions (None: where a new partition starts), after a refused
        commit. This default reopens the source; ``positions`` must then name every
        partition read so far."""
        self.close()
        self.open({name: pos for name, pos in positions.items() if pos is not None})

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (may be called more than once)."""
