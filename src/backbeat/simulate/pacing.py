"""Wall-clock pacing for ``--rate``: never emit events faster than a target rate.

``paced`` wraps any iterator of batches and sleeps before yielding a batch whenever the events
yielded so far would otherwise exceed ``events_per_second`` since the first batch. It never
speeds anything up; the clock and sleep functions are injectable for tests.

Next: ``writer.py`` or the engine consume the paced batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from backbeat.errors import ConfigError
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
