"""Benchmark: how fast the simulator generates contract events into Arrow (one core).

For each population size, runs the default site in ``--step-ms`` batches until at least
``--events`` rows (all four topics) have been built, and prints events/s by wall clock and by
CPU time (``process_time``: robust when another process shares the core), best of
``--repeat`` runs, excluding the one-off population/catalog build (reported as ``setup``).
A second, instrumented run splits the time into phases:

- ``rounds``: the engine's NumPy rounds (state machine, waits, session starts), less listens;
- ``listens``: drawing what each NextSong plays (``draw_plays``) and the rest of the listen
  (``finish_listens``);
- ``tables``: building the Arrow tables (sort, string columns, event ids);
- ``batches``: the rest (cutting chunks into batches, the benchmark loop).

Usage: ``uv run python benchmarks/bench_simulate.py --users 10000 100000 --events 1000000``.
To compare two versions, run it on each in the same session (the VMs vary ±20-40 %).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from backbeat.simulate import Simulator, SimulatorSettings
from backbeat.simulate import engine as engine_module
from backbeat.simulate import tables as tables_module

START = datetime(2025, 1, 6, tzinfo=UTC)


def run(sim: Simulator, events: int, step_ms: int) -> tuple[int, float, float]:
    """Events built, wall seconds, CPU seconds."""
    n = 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    for batch in sim.batches(step_ms=step_ms):
        n += batch.n_events
        if n >= events:
            break
    return n, time.perf_counter() - t0, time.process_time() - cpu0


@contextmanager
def phases() -> Iterator[dict[str, float]]:
    """CPU seconds spent in the engine step, the listen draws and the table builder."""
    spent = dict.fromkeys(("step", "listens", "tables"), 0.0)

    def timed(fn: Callable[..., Any], key: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] += time.process_time() - t

        return wrapper

    patches = [
        (engine_module.Engine, "step", "step"),
        (tables_module.TableBuilder, "build", "tables"),
    ]
    listen_fns = ("draw_plays", "finish_listens", "draw_listens")  # new and old engine
    patches += [(engine_module, n, "listens") for n in listen_fns if hasattr(engine_module, n)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, key in patches:
        setattr(owner, name, timed(getattr(owner, name), key))
    try:
        yield spent
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--step-ms", type=int, default=600_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs; the best is shown")
    args = parser.parse_args()

    print(f"step={args.step_ms / 60_000:g} min, events>={args.events:,}, best of {args.repeat}")
    for users in args.users:
        t0 = time.perf_counter()
        sim = Simulator(SimulatorSettings(users=users, seed=args.seed, start=START))
        setup = time.perf_counter() - t0
        runs = [run(sim, args.events, args.step_ms) for _ in range(args.repeat)]
        events = runs[0][0]
        wall, cpu = min(r[1] for r in runs), min(r[2] for r in runs)
        with phases() as spent:
            _, _, total = run(sim, args.events, args.step_ms)
        rounds = spent["step"] - spent["listens"]
        parts = {
            "rounds": rounds,
            "listens": spent["listens"],
            "tables": spent["tables"],
            "batches": total - spent["step"] - spent["tables"],
        }
        split = "  ".join(f"{k} {v:.2f}s ({v / total:.0%})" for k, v in parts.items())
        print(
            f"users={users:>7,} setup={setup:.2f}s events={events:,} "
            f"wall={wall:.2f}s {events / wall:>10,.0f} events/s  "
            f"cpu={cpu:.2f}s {events / cpu:>10,.0f} events/cpu-s\n"
            f"  phases (cpu, instrumented run {total:.2f}s): {split}"
        )


if __name__ == "__main__":
    main()
