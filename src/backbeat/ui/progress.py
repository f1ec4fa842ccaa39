"""A one-line live status for long runs (``stream``, ``simulate``): rate, totals, state.

Used as a context manager around a run; the engine calls :meth:`StatusLine.on_batch` after
every commit. Disabled (silent) for ``--json`` output. The description and the status are
shown as text, never markup, their control characters visible (``text.py``).

Next: ``live.py`` (the full demo screen).
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from backbeat.engine.base import RunReport
from backbeat.sinks.base import BatchStats
from backbeat.ui.text import visible


class StatusLine:
    """Spinner + events/s + totals, refreshed after each batch."""

    def __init__(
        self,
        console: Console,
        enabled: bool = True,
        total: int | None = None,
        description: str = "streaming",
    ) -> None:
        self.enabled = enabled
        self._started = time.monotonic()
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn() if total else TextColumn(""),
            TextColumn("{task.fields[status]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not enabled,
        )
        self._task = self._progress.add_task(
            visible(description), total=total, status="waiting for events"
        )

    def __enter__(self) -> StatusLine:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def advance(self, done: int, status: str) -> None:
        """Set progress to ``done`` with a status text."""
        self._progress.update(self._task, completed=done, status=visible(status))

    def on_batch(self, stats: BatchStats, report: RunReport) -> None:
        rate = report.events_in / max(time.monotonic() - self._started, 1e-9)
        self.advance(
            report.events_in,
            f"{rate:,.0f} events/s · {report.events_in:,} in · {report.accepted:,} accepted · "
            f"{report.duplicates:,} dup · {report.late:,} late · {report.dead:,} dead · "
            f"batch {stats.seconds * 1000:,.0f} ms",
        )
