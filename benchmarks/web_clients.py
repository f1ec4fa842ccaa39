"""The client side of ``bench_web.py``: the probe listener, the load generator, the figures.

- :class:`ProbeListener` is an SSE client on ``/api/stream?artist=backbeat-probe`` (what the
  dashboard's live table opens) that records, for each probe event it receives, the seconds
  from its stamp (``sent <ns>`` in the song, set as the ingest released it) to its arrival.
- :func:`paced` runs ``web_load.py`` (N connections offering R requests/s, evenly spaced) and
  :func:`autocannon` the npm load generator pinned in ``benchmarks/package.json`` (``npm ci
  --prefix benchmarks``; as fast as answers come), each in its own process; both return
  requests, seconds, p50/p99/max ms and failures.
- :func:`events_in` reads the store's event counter from ``/metrics`` (the achieved ingest
  rate is its difference over a phase, not the rate asked of the simulator).

Next: ``bench_web.py`` (how they are combined), ``web_ingest.py`` (the server).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import orjson

from web_ingest import PROBE_ARTIST

HERE = Path(__file__).resolve().parent
AUTOCANNON = HERE / "node_modules" / ".bin" / "autocannon"
_SENT = re.compile(r"^sent (\d+)$")


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values`` (NaN when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class ProbeListener:
    """Receives probe events over SSE and keeps their latencies, per phase."""

    base_url: str
    phase: str = "warm-up"
    latencies: dict[str, list[float]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    updates: int = 0

    async def run(self) -> None:
        """Listen until cancelled."""
        url = f"{self.base_url}api/stream"
        timeout = httpx2.Timeout(10.0, read=None)
        async with (
            httpx2.AsyncClient(timeout=timeout) as client,
            client.stream("GET", url, params={"artist": PROBE_ARTIST}) as response,
        ):
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    self._receive(line[5:], time.time_ns())

    def _receive(self, data: str, now_ns: int) -> None:
        self.updates += 1
        for event in orjson.loads(data)["events"]:
            n = int(event["artist"].rsplit("-", 1)[1])
            sent = _SENT.match(event["song"])
            if sent is None or n in self.seen:
                continue
            self.seen.add(n)
            latency_s = (now_ns - int(sent.group(1))) / 1e9
            self.latencies.setdefault(self.phase, []).append(latency_s)

    def of(self, phase: str) -> list[float]:
        return self.latencies.get(phase, [])

    @property
    def missing(self) -> int:
        """Probes numbered below the highest one received that never arrived."""
        return max(self.seen, default=-1) + 1 - len(self.seen)


def autocannon(url: str, connections: int, seconds: int) -> dict[str, float]:
    """Run autocannon against ``url`` (blocking), each connection sending its next request as
    soon as an answer comes; its figures.

    Raises:
        RuntimeError: autocannon is not installed or failed.
    """
    if not AUTOCANNON.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("autocannon needs Node.js and npm: install them, then rerun")
        subprocess.run(
            [npm, "ci", "--prefix", str(HERE), "--ignore-scripts", "--no-audit", "--no-fund"],
            check=True,
        )
    report = _run([str(AUTOCANNON), "-c", str(connections), "-d", str(seconds), "-j", "-n", url])
    return {
        "requests": report["requests"]["total"],
        "seconds": report["duration"],
        "p50_ms": report["latency"]["p50"],
        "p99_ms": report["latency"]["p99"],
        "max_ms": report["latency"]["max"],
        "failed": report["errors"] + report["timeouts"] + report["non2xx"],
    }


def paced(url: str, connections: int, seconds: int, rate: int, vary: int = 1) -> dict[str, float]:
    """Run ``web_load.py`` against ``url`` (blocking): ``rate`` requests/s evenly spaced
    (``{n}`` in the URL: 1..``vary`` in turn)."""
    flags = ["--connections", str(connections), "--rate", str(rate), "--seconds", str(seconds)]
    flags += ["--vary", str(vary)]
    figures: dict[str, float] = _run([sys.executable, str(HERE / "web_load.py"), url, *flags])
    return figures


def _run(command: list[str]) -> dict[str, Any]:
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({run.returncode}): {run.stderr[-500:]}")
    report: dict[str, Any] = json.loads(run.stdout)
    return report


def events_in(base_url: str) -> int:
    """The store's count of events read (``backbeat_store_events_in_total`` on ``/metrics``)."""
    with urllib.request.urlopen(f"{base_url}metrics", timeout=10) as response:
        text: str = response.read().decode()
    for line in text.splitlines():
        if line.startswith("backbeat_store_events_in_total "):
            return int(float(line.split()[1]))  # the exposition writes 20137.0
    raise RuntimeError("no backbeat_store_events_in_total in /metrics")
