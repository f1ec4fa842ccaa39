"""Benchmark: how fast the simulator generates contract events into Arrow (one core).

Runs the default site until at least ``--events`` rows (all four topics) have been built and
prints events/s, excluding the one-off population/catalog build (reported separately).
Usage: ``uv run python benchmarks/bench_simulate.py --users 10000 --events 1000000``.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from backbeat.simulate import Simulator, SimulatorSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--step-ms", type=int, default=3_600_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    t0 = time.perf_counter()
    sim = Simulator(
        SimulatorSettings(users=args.users, seed=args.seed, start=datetime(2025, 1, 6, tzinfo=UTC))
    )
    setup = time.perf_counter() - t0
    events, span_ms = 0, 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    for batch in sim.batches(step_ms=args.step_ms):
        events += batch.n_events
        span_ms = batch.end_ms - sim.start_ms
        if events >= args.events:
            break
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(
        f"users={args.users} step={args.step_ms / 60_000:g}min setup={setup:.2f}s "
        f"events={events} event_time={span_ms / 3_600_000:.1f}h "
        f"elapsed={elapsed:.2f}s rate={events / elapsed:,.0f} events/s "
        f"(cpu {cpu:.2f}s: {events / cpu:,.0f} events/cpu-s)"
    )


if __name__ == "__main__":
    main()
