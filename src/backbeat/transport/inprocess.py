"""The in-process simulator as a source: no broker, no files, typed Arrow all the way.

Each simulator step (a slice of event time) becomes one :class:`ArrowSlice` per topic. The
position of every ``simulator:<topic>`` partition is the index of the next step; because the
simulator is deterministic for a seed, a restart regenerates the stream and skips to that
step, which makes the in-process path exactly-once like the others.

Next: ``backbeat.simulate.simulator`` (the generator), ``backbeat.engine.pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pyarrow as pa

from backbeat.events.schema import Topic
from backbeat.simulate.simulator import SimBatch, Simulator
from backbeat.transport.base import ArrowSlice, Slice, Source

PARTITION_PREFIX = "simulator:"


class SimulatorSource(Source):
    """Pulls steps from a :class:`Simulator` and hands them out as typed slices."""

    def __init__(
        self,
        simulator: Simulator,
        step_ms: int = 60_000,
        steps_per_poll: int | None = None,
        catch_up: Callable[[], bool] | None = None,
    ) -> None:
        """``steps_per_poll`` bounds the steps one poll may take (1 for a paced, live run);
        past it, a poll still takes the next step while ``catch_up()`` says it is ready (a
        paced run whose consumer fell behind)."""
        self._sim = simulator
        self._step_ms = step_ms
        self._steps_per_poll = steps_per_poll
        self._catch_up = catch_up
        self._steps: Iterator[SimBatch] | None = None
        self._done = False

    def open(self, positions: Mapping[str, int]) -> None:
        mine = [v for k, v in positions.items() if k.startswith(PARTITION_PREFIX)]
        self._steps = iter(self._sim.batches(self._step_ms, start_index=min(mine, default=0)))

    @property
    def exhausted(self) -> bool:
        return self._done

    def partitions(self) -> dict[str, str]:
        if self._done:
            return {}
        return {PARTITION_PREFIX + t.value: t.value for t in Topic}

    def _wants(self, steps: int) -> bool:
        """Take another step after ``steps``?"""
        if self._steps_per_poll is None or steps < self._steps_per_poll:
            return True
        return self._catch_up is not None and self._catch_up()

    def poll(self, max_events: int) -> list[Slice]:
        """Steps until ``max_events`` (or ``steps_per_poll`` and caught up), one slice per topic."""
        assert self._steps is not None, "open() first"
        parts: dict[str, list[pa.Table]] = {}
        count = steps = 0
        next_index = None
        while count < max_events and self._wants(steps):
            step = next(self._steps, None)
            if step is None:
                self._done = True
                break
            steps += 1
            next_index = step.index + 1
            for topic, table in step.tables.items():
                parts.setdefault(topic.value, []).append(table)
                count += table.num_rows
        if next_index is None:
            return []
        slices: list[Slice] = []
        for name, tables in parts.items():
            table = pa.concat_tables(tables)
            slices.append(
                ArrowSlice(
                    topic=name,
                    partition=PARTITION_PREFIX + name,
                    table=table,
                    offsets=np.arange(table.num_rows, dtype=np.int64),
                    next_position=next_index,
                )
            )
        return slices
