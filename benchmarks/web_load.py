"""A paced HTTP load generator: N keep-alive connections offering R requests/s in all.

Each connection sends ``GET path`` at its own evenly spaced times (every N / R seconds,
connection ``i`` offset by ``i / R``) and records each answer's latency from the time the
request was *due*, so a slow answer that delays the next request counts against the server
(no coordinated omission). autocannon's ``--overallRate`` sends each connection's quota in a
burst at the start of every second instead, which measures the burst, not the rate; it stays
the load generator for the unpaced (saturation) phase.

Runs in its own process (asyncio on uvloop, raw HTTP/1.1, ~0.1 ms of CPU per request) and
prints one JSON object: requests, seconds, p50/p99/max latency in ms, failures.

    uv run python benchmarks/web_load.py URL [--connections 200] [--rate 2200] [--seconds 30]

Next: ``bench_web.py`` (the benchmark that runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse

import uvloop

from web_clients import percentile

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _exchange(conn: Connection, request: bytes) -> bool:
    """Send ``request`` and read the whole answer; was it a 200?"""
    reader, writer = conn
    writer.write(request)
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status.startswith(b"HTTP/1.1 200")


async def _paced(
    conn: Connection, requests: list[bytes], first_due: float, interval: float, until: float
) -> tuple[list[float], int]:
    """One connection's latencies (s) and failed answers, a request every ``interval`` s
    (cycling through ``requests``)."""
    latencies: list[float] = []
    failed = 0
    due = first_due
    sent = 0
    while due < until:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        failed += not await _exchange(conn, requests[sent % len(requests)])
        sent += 1
        latencies.append(time.perf_counter() - due)
        due += interval
    return latencies, failed


async def paced_load(
    url: str, connections: int, rate: float, seconds: float, vary: int = 1
) -> dict[str, float]:
    """Offer ``rate`` requests/s over ``connections`` for ``seconds``; the figures. A
    ``{n}`` in the URL's path takes the values 1..``vary`` in turn (each connection starts
    at its own)."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = urllib.parse.unquote(parts.path) + (f"?{parts.query}" if parts.query else "")
    requests = [
        f"GET {target.replace('{n}', str(n))} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        for n in range(1, vary + 1)
    ]
    conns = [await asyncio.open_connection(host, port) for _ in range(connections)]
    for conn in conns:  # one answer on each connection before the clock starts
        await _exchange(conn, requests[0])
    start = time.perf_counter() + 0.05
    interval = connections / rate
    results = await asyncio.gather(
        *(
            _paced(
                conn,
                requests[i % len(requests) :] + requests[: i % len(requests)],
                start + i / rate,
                interval,
                start + seconds,
            )
            for i, conn in enumerate(conns)
        )
    )
    took = time.perf_counter() - start
    for _, writer in conns:
        writer.close()
    latencies = [s for lat, _ in results for s in lat]
    return {
        "requests": len(latencies),
        "seconds": took,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=0.0) * 1000,
        "failed": sum(failed for _, failed in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2_200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--vary", type=int, default=1, help="{n} in the URL takes 1..N")
    args = parser.parse_args()
    figures = uvloop.run(paced_load(args.url, args.connections, args.rate, args.seconds, args.vary))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
