"""Embedded engine benchmark: simulator alone vs simulate -> aggregate -> commit, side by side.

Every measurement runs in a fresh child process (clean peak RSS, no warm caches shared):

- ``simulator``: events/s of the simulator alone, pinned to ONE core;
- ``embedded``: end to end (simulator -> decode/validate -> event time + dedup -> DuckDB
  aggregates -> one store commit per micro-batch), both cores, the simulator reading ahead
  in a second process;
- ``embedded-1thread``: the same without read-ahead, to show what the second core buys;
- ``engine``: the engine alone, on batches simulated before the clock starts.

With ``--against REF`` the same modes also run on another commit of backbeat (a git worktree
of REF under ``.bench/``, installed by ``uv sync --locked`` into its own environment), round
by round in turn with this checkout, so both see the same machine load; ``--rounds`` runs
each several times and the tables show medians and the ratio. For each size it prints
events/s, peak RSS and where the time goes (seconds per engine phase), as a table and bars.

    uv run python benchmarks/bench_embedded.py [--sizes 1000000 10000000] [--users 20000]
    uv run python benchmarks/bench_embedded.py --modes embedded --sizes 10000000 \\
        --against bd66f36 --rounds 3
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

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


@dataclass(frozen=True)
class Version:
    """A backbeat to measure: its interpreter and its copy of this script."""

    label: str
    python: str
    script: str


THIS = Version("this checkout", sys.executable, __file__)
ROOT = Path(__file__).resolve().parents[1]


def checkout(ref: str, console: Console) -> Version:
    """Another commit of backbeat, in a worktree of its own with its own environment."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    tree = ROOT / ".bench" / sha
    if not (tree / "pyproject.toml").exists():
        with console.status(f"checking out {ref} ({sha}) into {tree}…"):
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), sha],
                check=True, capture_output=True,
            )  # fmt: skip
    uv = ROOT / ".tools" / "bin" / "uv"
    with console.status(f"installing {sha} (uv sync --locked, C core included)…"):
        subprocess.run(
            [str(uv) if uv.exists() else "uv", "sync", "--locked", "--quiet"],
            cwd=tree, check=True, env={**os.environ, "VIRTUAL_ENV": ""},
        )  # fmt: skip
    return Version(
        f"{ref} ({sha})", str(tree / ".venv/bin/python"), str(tree / "benchmarks/bench_embedded.py")
    )


def run_child(version: Version, mode: str, events: int, users: int) -> dict[str, object]:
    out = subprocess.run(
        [version.python, version.script, "--child", mode, "--sizes", str(events),
         "--users", str(users)],
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    result["version"] = version.label
    return result


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


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median events/s (its phases and RSS with it), and every round's rate."""
    ranked = sorted(runs, key=lambda r: r["events_per_s"])
    median = dict(ranked[(len(ranked) - 1) // 2])
    median["rounds"] = [round(r["events_per_s"]) for r in runs]
    return median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument(
        "--modes", nargs="+", default=["simulator", "embedded", "embedded-1thread", "engine"]
    )
    parser.add_argument("--against", default=None, help="Also measure this git ref, in turn.")
    parser.add_argument("--rounds", type=int, default=1, help="Runs of each (medians shown).")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.sizes[0], args.users)))
        return

    console = Console()
    versions = [THIS] + ([checkout(args.against, console)] if args.against else [])
    console.print(f"[bold]backbeat embedded benchmark[/] · {machine()} · {args.users:,} users")
    runs: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for size in args.sizes:
        for mode in args.modes:
            for round_ in range(1, args.rounds + 1):
                for version in versions:
                    what = f"{mode}, {size:,} events, {version.label}, round {round_}"
                    with console.status(f"{what}…"):
                        r = run_child(version, mode, size, args.users)
                    runs.setdefault((version.label, size, mode), []).append(r)
                    console.print(
                        f"  {what:<58} {r['events_per_s']:>12,.0f} ev/s  "
                        f"peak RSS {r['peak_rss_mib']:>7,.0f} MiB  (load {os.getloadavg()[0]:.1f})"
                    )
    results = [_median(rs) for rs in runs.values()]
    _rates(console, results, versions)
    _phases(console, results)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))


def _rates(console: Console, results: list[dict[str, Any]], versions: list[Version]) -> None:
    table = Table(
        title="events per second, median run (higher is better)", header_style="bold magenta"
    )
    for col in (
        "mode",
        "events",
        "version",
        "seconds",
        "events/s",
        "rounds",
        "vs " + versions[-1].label,
        "peak RSS MiB",
        "",
    ):
        table.add_column(col, justify="left" if col in ("mode", "version", "") else "right")
    top = max(float(r["events_per_s"]) for r in results)
    base = {
        (r["mode"], r["events"] // 1000): r for r in results if r["version"] == versions[-1].label
    }
    for r in results:
        rate = float(r["events_per_s"])
        other = base.get((r["mode"], r["events"] // 1000))
        ratio = (
            f"{rate / float(other['events_per_s']) - 1:+.0%}" if other and other is not r else ""
        )
        table.add_row(
            str(r["mode"]), f"{r['events']:,}", str(r["version"]), f"{r['seconds']:.1f}",
            f"{rate:,.0f}", " / ".join(f"{x:,}" for x in r["rounds"]), ratio,
            f"{r['peak_rss_mib']:,.0f}", "[green]" + "█" * max(1, round(rate / top * 30)),
        )  # fmt: skip
    console.print(table)


def _phases(console: Console, results: list[dict[str, Any]]) -> None:
    table = Table(title="where the time goes (seconds, median run)", header_style="bold magenta")
    table.add_column("mode / events / version")
    names = sorted({k for r in results for k in r["phases"]})
    for name in names:
        table.add_column(name, justify="right")
    for r in results:
        if r["mode"] != "simulator":
            table.add_row(
                f"{r['mode']} {r['events']:,} {r['version']}",
                *(f"{r['phases'].get(n, 0.0):.2f}" for n in names),
            )
    console.print(table)


if __name__ == "__main__":
    main()
