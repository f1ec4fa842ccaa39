"""Embedded engine benchmark: simulator alone vs simulate -> aggregate -> commit, side by side.

Every measurement runs in a fresh child process (clean peak RSS, no warm caches shared):

- ``simulator``: events/s of the simulator alone, pinned to ONE core;
- ``embedded``: end to end (simulator -> decode/validate -> event time + dedup -> DuckDB
  aggregates -> one store commit per micro-batch), both cores, the simulator reading ahead
  on a background thread;
- ``embedded-1thread``: the same without read-ahead, to show what the second core buys;
- ``engine``: the engine alone, on batches simulated before the clock starts.

For each size (default 1 M and 10 M events) it prints events/s, peak RSS and where the time
goes (seconds per engine phase), as a table and as bars.

    uv run python benchmarks/bench_embedded.py [--sizes 1000000 10000000] [--users 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from backbeat.transport.base import Slice, Source

START = datetime(2026, 1, 5, tzinfo=UTC)
BATCH = 500_000


def child(mode: str, events: int, users: int) -> dict[str, object]:
    """Run one measurement in this process and return its figures."""
    from backbeat.engine.base import EngineSettings
    from backbeat.engine.pipeline import Pipeline
    from backbeat.simulate.simulator import Simulator, SimulatorSettings
    from backbeat.sinks.duckdb.store import DuckDBStore
    from backbeat.transport.inprocess import SimulatorSource
    from backbeat.transport.prefetch import Prefetching

    sim = Simulator(SimulatorSettings(users=users, seed=1, start=START))
    if mode == "simulator":
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        t0, n = time.perf_counter(), 0
        for step in sim.batches(step_ms=600_000):
            n += step.n_events
            if n >= events:
                break
        seconds = time.perf_counter() - t0
        phases: dict[str, float] = {"simulate": seconds}
    else:
        folder = Path(tempfile.mkdtemp(prefix="backbeat-bench-"))
        store = DuckDBStore.at(str(folder))
        source: Source = SimulatorSource(sim, step_ms=600_000)
        if mode == "embedded":
            source = Prefetching(source, BATCH, worker="process")
        elif mode == "engine":
            source = _Replay(source, events)
        pipeline = Pipeline(source, store, settings=EngineSettings(max_batch_events=BATCH))
        t0 = time.perf_counter()
        report = pipeline.run(max_events=events)
        seconds = time.perf_counter() - t0
        n, phases = report.events_in, report.phases
        pipeline.close()
        store.close()
        shutil.rmtree(folder)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": mode,
        "events": n,
        "seconds": seconds,
        "events_per_s": n / seconds,
        "peak_rss_mib": rss_mib,
        "phases": phases,
    }


class _Replay(Source):
    """Hands out batches that were all produced before the clock started."""

    def __init__(self, inner: Source, events: int) -> None:
        inner.open({})
        self._batches: list[list[Slice]] = []
        total = 0
        while total < events and not inner.exhausted:
            slices = inner.poll(BATCH)
            self._batches.append(slices)
            total += sum(len(s.offsets) for s in slices)

    def open(self, positions: Mapping[str, int]) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return not self._batches

    def poll(self, max_events: int) -> list[Slice]:
        return self._batches.pop(0) if self._batches else []


def run_child(mode: str, events: int, users: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--sizes", str(events), "--users", str(users)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def machine() -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument(
        "--modes", nargs="+", default=["simulator", "embedded", "embedded-1thread", "engine"]
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.sizes[0], args.users)))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]backbeat embedded benchmark[/] · {machine()} · {args.users:,} users")
    results = []
    for size in args.sizes:
        for mode in args.modes:
            with console.status(f"{mode}: {size:,} events…"):
                results.append(run_child(mode, size, args.users))
            r = results[-1]
            console.print(
                f"  {mode:<17} {r['events']:>12,} events  {r['events_per_s']:>12,.0f} ev/s  "
                f"peak RSS {r['peak_rss_mib']:>7,.0f} MiB"
            )
    table = Table(title="events per second (higher is better)", header_style="bold magenta")
    for col in ("mode", "events", "seconds", "events/s", "peak RSS MiB", ""):
        table.add_column(col, justify="right" if col not in ("mode", "") else "left")
    top = max(float(r["events_per_s"]) for r in results)  # type: ignore[arg-type]
    for r in results:
        rate = float(r["events_per_s"])  # type: ignore[arg-type]
        table.add_row(
            str(r["mode"]),
            f"{r['events']:,}",
            f"{r['seconds']:.1f}",
            f"{rate:,.0f}",
            f"{r['peak_rss_mib']:,.0f}",
            "[green]" + "█" * max(1, round(rate / top * 30)),
        )
    console.print(table)
    phases = Table(
        title="where the time goes (seconds, embedded end to end)", header_style="bold magenta"
    )
    phases.add_column("mode / events")
    names = sorted({k for r in results for k in r["phases"]})  # type: ignore[attr-defined]
    for name in names:
        phases.add_column(name, justify="right")
    for r in results:
        if r["mode"] != "simulator":
            phases.add_row(
                f"{r['mode']} {r['events']:,}", *(f"{r['phases'].get(n, 0.0):.2f}" for n in names)
            )  # type: ignore[attr-defined]
    console.print(phases)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
