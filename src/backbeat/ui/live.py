"""The live terminal view of ``backbeat demo``: charts, not tables only.

It reads the store through its reader's named queries (never engine internals) and renders
top songs, top artists, a sparkline per genre of plays per minute over the last minutes, and
throughput. :class:`LiveView` refreshes at most once a second from the engine's per-batch
callback. Names, genres and the title are data: shown as text, never markup, their control
characters visible (``text.py``).

Next: ``backbeat.sinks.queries`` (the reads), ``backbeat.commands.demo`` (who shows it).
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime

import pyarrow as pa
from rich.console import Console, Group
from rich.layout import Layout
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from backbeat.engine.base import RunReport
from backbeat.sinks import queries as q
from backbeat.sinks.base import BatchStats
from backbeat.ui.text import plain

_BARS = " ▁▂▃▄▅▆▇█"
_MINUTES = 15


def sparkline(values: list[int]) -> str:
    """Unicode sparkline of ``values`` scaled to their maximum."""
    top = max(values, default=0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(8, round(v / top * 8))] for v in values)


def _ranked(title: str, rows: pa.Table, label: str) -> Panel:
    table = Table(expand=True, box=None, pad_edge=False)
    table.add_column("#", justify="right", style="dim", min_width=3, no_wrap=True)
    table.add_column(label, overflow="ellipsis", no_wrap=True)
    table.add_column("plays", justify="right", style="bold cyan")
    top = max((r["plays"] for r in rows.to_pylist()), default=1)
    for i, row in enumerate(rows.to_pylist(), 1):
        name = f"{row['artist']} — {row['song']}" if "song" in row else row["artist"]
        bar = "█" * max(1, round(row["plays"] / top * 10))
        table.add_row(str(i), plain(name), Text.assemble((bar, "green"), f" {row['plays']:,}"))
    return Panel(table, title=title, border_style="magenta")


class LiveView:
    """A refreshing terminal dashboard over a store."""

    def __init__(self, reader: q.Reader, console: Console | None = None, title: str = "") -> None:
        self.reader = reader
        self.console = console or Console()
        self.title = title or "backbeat · live"
        self._live = Live(console=self.console, refresh_per_second=4, screen=False)
        self._last = 0.0
        self._started = time.monotonic()
        self._rates: deque[tuple[float, int]] = deque([(self._started, 0)], maxlen=30)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        self._live.update(Text("starting…", style="dim"))
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def on_batch(self, stats: BatchStats, report: RunReport) -> None:
        """Engine callback: record throughput, redraw at most once a second."""
        now = time.monotonic()
        self._rates.append((now, report.events_in))
        if now - self._last >= 1.0:
            self._last = now
            self._live.update(self.render(report))

    def events_per_second(self) -> float:
        if len(self._rates) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._rates[0], self._rates[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def render(self, report: RunReport) -> Layout:
        t = self.reader.one(q.LatestTime()).get("t")
        latest = None if t is None else t // 60_000 * 60_000
        layout = Layout()
        layout.split_column(
            Layout(self._header(report, latest), size=3),
            Layout(name="body"),
        )
        if latest is None:
            layout["body"].update(Text("waiting for the first listens…", style="dim"))
            return layout
        span = q.TimeRange(latest - (_MINUTES - 1) * 60_000, latest + 60_000)
        songs = self.reader.run(q.TopSongs(span=span, limit=10))
        artists = self.reader.run(q.TopArtists(span=span, limit=10))
        layout["body"].split_row(
            Layout(_ranked("Top songs (last 15 min)", songs, "song")),
            Layout(_ranked("Top artists (last 15 min)", artists, "artist")),
            Layout(self._genres(span, latest)),
        )
        return layout

    def _header(self, report: RunReport, latest: int | None) -> Panel:
        clock = (
            datetime.fromtimestamp(latest / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            if latest is not None
            else "—"
        )
        text = Text.assemble(
            (f"{self.events_per_second():>12,.0f} events/s", "bold green"),
            f"   in {report.events_in:,}   accepted {report.accepted:,}   ",
            (f"duplicates {report.duplicates:,}   late {report.late:,}   ", "yellow"),
            (f"dead letters {report.dead:,}", "red"),
            f"   event time {clock}   up {time.monotonic() - self._started:,.0f}s",
        )
        return Panel(text, title=plain(self.title), border_style="cyan")

    def _genres(self, span: q.TimeRange, latest: int) -> Panel:
        rows = self.reader.run(q.GenreWindows(span=span)).to_pylist()
        minutes = [latest - (_MINUTES - 1 - i) * 60_000 for i in range(_MINUTES)]
        per: dict[str, dict[int, int]] = {}
        for r in rows:
            ms = int(r["window_start"].replace(tzinfo=UTC).timestamp() * 1000)
            per.setdefault(r["genre"], {})[ms] = r["plays"]
        ranked = sorted(per.items(), key=lambda kv: -sum(kv[1].values()))[:12]
        table = Table(expand=True, box=None, pad_edge=False)
        table.add_column("genre", no_wrap=True)
        table.add_column(f"plays / min, last {_MINUTES}", no_wrap=True, style="green")
        table.add_column("total", justify="right", style="bold cyan")
        for genre, counts in ranked:
            series = [counts.get(m, 0) for m in minutes]
            table.add_row(plain(genre), sparkline(series), f"{sum(series):,}")
        return Panel(Group(table), title="Plays per genre per minute", border_style="green")
