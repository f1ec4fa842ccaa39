"""Benchmark: how soon `backbeat demo` shows live numbers (issue 2: within 5 s).

Runs the demo as a user would (a terminal of 120x40, the web dashboard on a free port)
``--repeat`` times and prints the seconds from the command's start until the terminal view
shows a positive rate and the top lists: each run, the median and the worst.

    uv run python benchmarks/bench_demo_start.py [--repeat 5] [--users 50000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.demo import demo_terminal

from bench_embedded import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--users", type=int, default=50_000)
    args = parser.parse_args()
    print(machine())
    times: list[float] = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            run = demo_terminal(
                Path(tmp), "--duration", "10", "--users", str(args.users), "--port", "0"
            )
        if run.returncode != 0 or run.first_live_s is None:
            print(f"run {i + 1}: FAILED (exit {run.returncode})")
            print(run.output[-1500:].decode(errors="replace"))
            sys.exit(1)
        times.append(run.first_live_s)
        print(f"run {i + 1}: live numbers after {run.first_live_s:.2f} s")
    print(
        f"demo start -> live numbers: median {statistics.median(times):.2f} s, "
        f"worst {max(times):.2f} s over {len(times)} runs (target < 5 s)"
    )


if __name__ == "__main__":
    main()
