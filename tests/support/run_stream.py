"""Stand-in for ``backbeat stream`` (same flags), for when the CLI is not installed.

Prints one line per committed batch (``batch <n> events_in=<total>``) and, last, the run
report as one JSON object, so a test driving it as a subprocess can follow and check it. Tests
run the engine through this script so that a crash of the engine (even a segfault in a native
library) fails one test instead of killing the whole pytest session.

Usage: ``python tests/support/run_stream.py --input DIR --store DIR --csv FILE
[--max-events N] [--timeout S] [--batch-size N]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backbeat.engine.pipeline import EngineSettings, Pipeline, RunReport
from backbeat.sinks.base import BatchStats
from backbeat.sinks.csv_sink import CsvSink
from backbeat.sinks.duckdb_store import DuckDBStore
from backbeat.transport.jsonl import JsonlSource, discover


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", type=Path, action="append", required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--max-events", type=int)
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--batch-size", type=int, default=250_000)
    args = parser.parse_args()

    def progress(stats: BatchStats, report: RunReport) -> None:
        print(f"batch {report.batches} events_in={report.events_in}", flush=True)

    store = DuckDBStore.in_dir(args.store)
    pipeline = Pipeline(
        JsonlSource(discover(args.input)),
        store,
        EngineSettings(max_batch_events=args.batch_size),
        csv=CsvSink(args.csv) if args.csv else None,
        on_batch=progress,
    )
    try:
        report = pipeline.run(max_events=args.max_events, timeout=args.timeout)
    finally:
        pipeline.close()
        store.close()
    fields = ("batches", "events_in", "accepted", "duplicates", "late", "dead", "stopped_by")
    print(json.dumps({name: getattr(report, name) for name in fields}), flush=True)


if __name__ == "__main__":
    main()
