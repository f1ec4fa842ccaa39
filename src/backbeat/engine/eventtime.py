"""Event time: per-partition watermarks and the lateness rule.

Each partition (a file, a Kafka partition, a simulator topic) keeps the largest valid event
time it has delivered. An event is *late* when its ``ts`` is below that maximum, as it stood
before the event, minus the allowed lateness. Because the rule depends only on the order of
events inside a partition, the same log gives the same verdicts however it is cut into
batches or restarted. A topic's watermark is the smallest of the watermarks of its *open*
partitions (those the running source may still deliver from); an open partition that has not
delivered anything yet holds the topic back, a finished one no longer counts, and partitions
of earlier runs on other inputs are ignored. A 1-minute window is final once the watermark
reaches its end.

Next: ``dedup.py``, ``pipeline.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

NO_TS = -(2**62)


class Watermarks:
    """Largest event time per partition, and what that makes late."""

    def __init__(self, lateness_ms: int, max_ts: Mapping[str, int], topics: Mapping[str, str]):
        self.lateness_ms = lateness_ms
        self.max_ts: dict[str, int] = dict(max_ts)
        self.topic_of: dict[str, str] = dict(topics)
        self._this_run: set[str] = set()

    def restore(self, partition: str, topic: str, max_ts: int) -> None:
        """Take a partition over at its stored largest event time."""
        self.max_ts[partition] = max_ts
        self.topic_of[partition] = topic

    def forget(self, partitions: Iterable[str]) -> None:
        """Let go of partitions (another process owns them now)."""
        for partition in partitions:
            self.max_ts.pop(partition, None)
            self.topic_of.pop(partition, None)
            self._this_run.discard(partition)

    def advance(
        self, topic: str, partition: str, ts: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Each event's watermark (latest earlier ts of its partition - lateness), in order;
        an event is late when its ``ts`` is below it. Advances the partition's maximum."""
        self.topic_of.setdefault(partition, topic)
        self._this_run.add(partition)
        before = self.max_ts.get(partition, NO_TS)
        if len(ts) == 0:
            return np.zeros(0, dtype=np.int64)
        running = np.maximum.accumulate(ts)
        previous = np.empty_like(running)
        previous[0] = before
        np.maximum(running[:-1], before, out=previous[1:])
        self.max_ts[partition] = max(before, int(running[-1]))
        marks: npt.NDArray[np.int64] = previous - self.lateness_ms
        return marks

    def late_mask(
        self, topic: str, partition: str, ts: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """Which of a partition's next events are late (see :meth:`advance`)."""
        late: npt.NDArray[np.bool_] = ts < self.advance(topic, partition, ts)
        return late

    def watermark(self, topic: str, open_partitions: Mapping[str, str] | None = None) -> int | None:
        """The topic's watermark, or None while one of its open partitions has no event yet.

        Args:
            topic: the topic.
            open_partitions: partition -> topic of what the source may still deliver; None
                when the source cannot tell (then: the partitions seen in this run).
        """
        members = [p for p, t in (open_partitions or {}).items() if t == topic]
        if not members:  # unknown, or all finished: what this run has read
            members = [p for p in self._this_run if self.topic_of.get(p) == topic]
        marks = [self.max_ts.get(p, NO_TS) for p in members]
        if not marks or NO_TS in marks:
            return None
        return min(marks) - self.lateness_ms
