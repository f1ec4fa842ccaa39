"""Shaping the simulator's batches for a consumer: pace them to ``--rate``, merge small ones.

``paced`` wraps any iterator of batches and sleeps before yielding a batch whenever the events
yielded so far would otherwise exceed ``events_per_second`` since the first batch. It never
speeds anything up; the clock and sleep functions are injectable for tests. ``coalesced``
merges consecutive batches until each holds at least a given number of events, so per-batch
costs (a DuckDB query to encode, a Python call per topic) are paid per ~50k events instead of
per simulated minute; the events and their order do not change.

Next: ``writer.py`` or the engine consume the paced batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa

from backbeat.errors import ConfigError
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import SimBatch


def paced(
    batches: Iterable[SimBatch],
    events_per_second: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[SimBatch]:
    """Yield ``batches`` no faster than ``events_per_second`` on average.

    Raises:
        ConfigError: the rate is not positive.
    """
    if not events_per_second > 0:
        raise ConfigError(f"rate must be > 0 events/s, got {events_per_second}")
    started = clock()
    sent = 0
    for batch in batches:
        sent += batch.n_events
        due = started + sent / events_per_second
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        yield batch


def coalesced(batches: Iterable[SimBatch], min_events: int) -> Iterator[SimBatch]:
    """Merge consecutive ``batches`` (per topic, in order) into batches of ``min_events`` or
    more; the last one may hold fewer. A merged batch spans its parts' time range and keeps
    the first part's index.
    """
    parts: list[SimBatch] = []
    count = 0
    for batch in batches:
        parts.append(batch)
        count += batch.n_events
        if count >= min_events:
            yield _merge(parts)
            parts, count = [], 0
    if parts:
        yield _merge(parts)


def _merge(parts: list[SimBatch]) -> SimBatch:
    if len(parts) == 1:
        return parts[0]
    tables: dict[Topic, list[pa.Table]] = {}
    for part in parts:
        for topic, table in part.tables.items():
            tables.setdefault(topic, []).append(table)
    return SimBatch(
        index=parts[0].index,
        start_ms=parts[0].start_ms,
        end_ms=parts[-1].end_ms,
        tables={topic: pa.concat_tables(ts) for topic, ts in tables.items()},
    )
