"""Benchmark: the live API under ingest (issue 4, acceptance items 3 and 4).

Starts ``web_ingest.py`` (the demo's simulator -> engine -> DuckDB store at ~10,000 events/s
with the web app, plus one stamped probe listen per 250 ms step) in a child process, connects
an SSE client to ``/api/stream?artist=backbeat-probe`` and, after a warm-up, runs two phases:

1. ``latency``: ingest only; event -> screen latency of the probes (stamp as the ingest
   releases the event -> arrival in the SSE client). Target: p99 < 1 s at 10,000 events/s.
2. ``load``: ``web_load.py``: 200 keep-alive connections offering 2,200 req/s in all, evenly
   spaced, on ``/api/top-songs``, latency counted from each request's due time; the probes
   still measured. Target: p99 < 20 ms at >= 2,000 req/s while the ingest runs at 10,000
   events/s. (autocannon's ``--overallRate`` sends each connection's quota in a burst at the
   start of every second, and 200 connections that each send the next request as soon as an
   answer comes would need 10,000 req/s for a 20 ms mean, by Little's law.)
3. ``saturate``: autocannon (``benchmarks/package.json``) with the same 200 connections,
   unpaced: the most req/s the server answers during the ingest, and the queueing latency.

The ingest rate printed is measured from the store's event counter (``/metrics``) over each
phase. Everything shares this machine's cores: the engine, the server, the load generator and
the SSE client. It prints PASS/MISS next to each target and exits 0 either way.

    uv run python benchmarks/bench_web.py [--users 35000] [--speed 300] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
from rich.console import Console

from backbeat.ui.progress import StatusLine
from bench_embedded import machine
from web_clients import ProbeListener, autocannon, events_in, paced, percentile

HERE = Path(__file__).resolve().parent
T = TypeVar("T")

INGEST_TARGET = 10_000  # events/s
LATENCY_TARGET_S = 1.0  # p99 event -> screen
RATE_TARGET = 2_000  # req/s on /api/top-songs
P99_TARGET_MS = 20.0


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    seconds: float
    events: int
    server_cpu_s: float
    machine_busy: float
    latencies: list[float]
    load: dict[str, float] | None = None

    @property
    def ingest_rate(self) -> float:
        return self.events / self.seconds


class Bench:
    """The running server, the probe listener and the status line."""

    def __init__(self, server: subprocess.Popen[bytes], url: str, console: Console) -> None:
        self.server = server
        self.url = url
        self.console = console
        self.probes = ProbeListener(url)
        self._proc = psutil.Process(server.pid)

    def _cpu(self) -> float:
        times = self._proc.cpu_times()
        return float(times.user + times.system)

    async def phase(
        self, name: str, seconds: float, work: Awaitable[T] | None = None
    ) -> tuple[Phase, T | None]:
        """Run ``work`` (or wait ``seconds``) with a live status line; measure the phase."""
        self.probes.phase = name
        n0, cpu0, t0 = await asyncio.to_thread(events_in, self.url), self._cpu(), time.monotonic()
        psutil.cpu_percent()  # starts the machine-wide measurement
        task = asyncio.ensure_future(work if work is not None else asyncio.sleep(seconds))
        with StatusLine(self.console, total=int(seconds), description=f"{name:8}") as status:
            while not task.done():
                await asyncio.wait({task}, timeout=0.5)
                elapsed = time.monotonic() - t0
                n = await asyncio.to_thread(events_in, self.url)
                status.advance(int(min(elapsed, seconds)), self._status(name, n - n0, elapsed))
        busy = psutil.cpu_percent()
        n1, cpu1, t1 = await asyncio.to_thread(events_in, self.url), self._cpu(), time.monotonic()
        measured = Phase(name, t1 - t0, n1 - n0, cpu1 - cpu0, busy, list(self.probes.of(name)))
        return measured, task.result()

    def _status(self, name: str, events: int, elapsed: float) -> str:
        lat = self.probes.of(name)
        p99 = f"{percentile(lat, 99):.2f} s" if lat else "-"
        return (
            f"ingest {events / max(elapsed, 1e-9):,.0f} ev/s · {len(lat)} probes, "
            f"p99 {p99} · {self.probes.missing} missing"
        )


def start_server(store: Path, users: int, speed: float, web: str, log: Path) -> tuple[Any, str]:
    """``web_ingest.py`` in a child process; returns it and its base URL once it serves."""
    flags = ["--store", str(store), "--users", str(users), "--speed", str(speed), "--web", web]
    server = subprocess.Popen(
        [sys.executable, str(HERE / "web_ingest.py"), *flags],
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
    )
    assert server.stdout is not None
    line = server.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "url":
        server.kill()
        raise RuntimeError(f"the server did not start: {log.read_text()[-1500:]}")
    return server, line[1]


async def measure(args: argparse.Namespace, store: Path, console: Console) -> list[Phase]:
    server, url = start_server(store, args.users, args.speed, args.web, store.parent / "server.log")
    bench = Bench(server, url, console)
    top_songs = f"{url}api/top-songs"
    listener = asyncio.create_task(bench.probes.run())
    try:
        await bench.phase("warm-up", args.warmup)
        latency, _ = await bench.phase("latency", args.seconds)
        steady = asyncio.to_thread(paced, top_songs, args.connections, args.seconds, args.rate)
        load, figures = await bench.phase("load", args.seconds, steady)
        load.load = figures
        phases = [latency, load]
        if args.saturate:
            flat_out = asyncio.to_thread(autocannon, top_songs, args.connections, args.seconds)
            saturate, figures = await bench.phase("saturate", args.seconds, flat_out)
            saturate.load = figures
            phases.append(saturate)
        return phases
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(phases: list[Phase], connections: int) -> list[str]:
    """The figures next to their targets, one line each."""
    lines: list[str] = []
    for phase in phases:
        lat = phase.latencies
        rate = phase.ingest_rate
        lines.append(
            f"[{phase.name}] {phase.seconds:.0f} s · ingest {rate:,.0f} events/s measured in the "
            f"store (target >= {INGEST_TARGET:,}: {verdict(rate >= INGEST_TARGET)}) · server "
            f"process {phase.server_cpu_s / phase.seconds:.0%} of a core, machine "
            f"{phase.machine_busy:.0f}% busy"
        )
        p99 = percentile(lat, 99)
        lines.append(
            f"  event -> screen (SSE): {len(lat)} probes · p50 {percentile(lat, 50):.3f} s · "
            f"p95 {percentile(lat, 95):.3f} s · p99 {p99:.3f} s · max {max(lat, default=0):.3f} s"
            f"   target p99 < {LATENCY_TARGET_S:g} s: {verdict(p99 < LATENCY_TARGET_S)}"
        )
        if phase.load is not None:
            how = "paced" if phase.name == "load" else "autocannon, unpaced"
            lines.append(f"  /api/top-songs, {connections} connections ({how}): " + _load(phase))
    return lines


def _load(phase: Phase) -> str:
    assert phase.load is not None
    load = phase.load
    rps = load["requests"] / load["seconds"]
    rate, p99 = f"{rps:,.0f} req/s", f"p99 {load['p99_ms']:.1f} ms"
    if phase.name == "load":
        rate += f" (target >= {RATE_TARGET:,}: {verdict(rps >= RATE_TARGET)})"
        p99 += f" (target < {P99_TARGET_MS:g} ms: {verdict(load['p99_ms'] < P99_TARGET_MS)})"
    return (
        f"{rate} · p50 {load['p50_ms']:.1f} ms · {p99} · max {load['max_ms']:.0f} ms · "
        f"{load['requests']:,.0f} requests, {load['failed']:.0f} failed"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--users", type=int, default=35_000, help="simulated users (35,000 at x300: ~11k ev/s)"
    )
    parser.add_argument("--speed", type=float, default=300.0, help="event time x wall clock")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=int, default=30, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rate", type=int, default=2_200, help="load phase: req/s offered")
    parser.add_argument(
        "--no-saturate",
        dest="saturate",
        action="store_false",
        help="skip the last phase (as many req/s as the server answers)",
    )
    parser.add_argument(
        "--web",
        choices=("process", "thread"),
        default="process",
        help="the web server in its own process (as the demo runs it) or in the engine's",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    console = Console(stderr=True)
    print(f"{machine()} · load average {os.getloadavg()[0]:.2f} at the start")
    print(f"ingest: the demo's simulator, {args.users:,} users at x{args.speed:g} event time")
    where = "its own process" if args.web == "process" else "a thread of the engine's process"
    print(f"web server: {where}")
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        phases = asyncio.run(measure(args, Path(tmp) / "store", console))
    print("\n".join(report(phases, args.connections)))
    if args.json is not None:
        args.json.write_text(json.dumps([vars(p) for p in phases], indent=2))


if __name__ == "__main__":
    main()
