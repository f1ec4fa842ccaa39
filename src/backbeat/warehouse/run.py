"""``backbeat batch run``: catch up, idempotently, with every finished hour of the lake.

An hour is finished once its end plus a grace period (the engine's allowed lateness and the
lake's write delay) has passed on the wall clock. For each finished hour of each topic whose
lake files differ from what was last loaded (``jobs.py`` keeps the fingerprint): load; then
de-duplicate every listen hour whose load is newer than its gold hour; then compact, expire
and clean (``maintain.py``). Nothing to do: nothing changes. Killed anywhere: the next run
redoes what was not recorded, which replaces hours with the same rows. Meant for cron or a
Kubernetes CronJob; ``--every 1h`` loops it for local use.

Next: ``reader.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, TypeVar

from pyarrow import fs

from backbeat.events.schema import Topic
from backbeat.sinks.lake.layout import HOUR_MS
from backbeat.warehouse import jobs
from backbeat.warehouse.catalog import GOLD, Warehouse
from backbeat.warehouse.dedup import dedup_hour
from backbeat.warehouse.hours import fingerprint, label
from backbeat.warehouse.load import load_hour
from backbeat.warehouse.maintain import Tidied, tidy

log = logging.getLogger(__name__)

RECORD_EVERY: Final = 24
"""Steps recorded per jobs commit (a kill redoes at most this many hours)."""

T = TypeVar("T")
Progress = Callable[[str, int, int], None]
"""``(step, done, total)`` after each hour."""


@dataclass(frozen=True)
class RunReport:
    loaded: int
    deduplicated: int
    tidied: tuple[Tidied, ...]
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "hours_loaded": self.loaded,
            "hours_deduplicated": self.deduplicated,
            "tables": [t.__dict__ for t in self.tidied],
            "seconds": round(self.seconds, 3),
        }


def finished_hours(
    warehouse: Warehouse, topics: Sequence[Topic], now_ms: int, grace_ms: int
) -> list[tuple[Topic, int, list[fs.FileInfo]]]:
    """(topic, hour, live lake files) of each finished hour whose lake files changed since it
    was last loaded."""
    loaded = jobs.latest(warehouse, "load")
    todo = []
    for topic in topics:
        for hour in warehouse.lake.hours(topic):
            if (hour + 1) * HOUR_MS + grace_ms > now_ms:
                continue
            files = warehouse.lake.live_files(topic, hour)
            if loaded.get((topic.value, hour)) != fingerprint(files):
                todo.append((topic, hour, files))
    return todo


def stale_gold(warehouse: Warehouse) -> list[tuple[int, str]]:
    """(hour, load fingerprint) of each listen hour loaded since it was last de-duplicated."""
    loaded = jobs.latest(warehouse, "load")
    deduped = jobs.latest(warehouse, "dedup")
    return sorted(
        (hour, fp)
        for (target, hour), fp in loaded.items()
        if target == Topic.LISTEN.value and deduped.get((GOLD, hour)) != fp
    )


def catch_up(
    warehouse: Warehouse,
    now_ms: int,
    grace: timedelta = timedelta(minutes=15),
    keep: timedelta = timedelta(days=7),
    orphan_age: timedelta = timedelta(hours=1),
    topics: Sequence[Topic] = tuple(Topic),
    progress: Progress | None = None,
) -> RunReport:
    """Load, de-duplicate and tidy every finished hour not yet done.

    Raises:
        StoreError: the lake or the catalog failed (what was recorded stays done).
    """
    started = time.monotonic()
    tell = progress or (lambda step, done, total: None)
    todo = finished_hours(warehouse, topics, now_ms, int(grace.total_seconds() * 1000))
    _steps("load", todo, lambda item: load_hour(warehouse, *item).done(), warehouse, tell)
    gold = stale_gold(warehouse) if Topic.LISTEN in topics else []
    _steps("dedup", gold, lambda item: dedup_hour(warehouse, item[0], item[1]), warehouse, tell)
    names = [t.value for t in topics if warehouse.exists(t.value)]
    names += [n for n in (GOLD, jobs.TABLE) if warehouse.exists(n)]
    tidied = []
    for i, name in enumerate(names):
        tidied.append(tidy(warehouse, name, keep, orphan_age))
        tell("compact", i + 1, len(names))
    return RunReport(len(todo), len(gold), tuple(tidied), time.monotonic() - started)


def _steps(
    step: str,
    items: Sequence[T],
    do: Callable[[T], jobs.Done],
    warehouse: Warehouse,
    tell: Progress,
) -> None:
    """Run ``do`` on each item, recording what was done every ``RECORD_EVERY`` items."""
    done: list[jobs.Done] = []
    for i, item in enumerate(items):
        done.append(do(item))
        log.info("%s: %s hour %s, %d rows", step, done[-1].target, label(done[-1].hour),
                 done[-1].rows)  # fmt: skip
        tell(step, i + 1, len(items))
        if len(done) >= RECORD_EVERY:
            jobs.record(warehouse, done)
            done = []
    jobs.record(warehouse, done)
