"""Replay benchmark: a ``spotify_history.csv`` of a million rows into JSONL files and into
Kafka, rows/s.

The CSV is built once from the real extended-history sample (``../shared/data/spotify``):
its 393 music plays repeated with their times moved by whole days and their artists varied,
in the Kaggle/Maven shape (``ts`` = stop time, ``TRUE``/``FALSE``). Each round runs in a fresh
process: read the CSV, parse the times, build sessions, ids and listen events, encode and
append ``listen_events.jsonl`` (what ``backbeat replay FILE --out DIR`` does), or produce them
to Kafka (``--bootstrap-servers``; without it the tansu broker the tests use is started, with
a topic prefix of each round's own). Target: at least 300,000 rows/s to JSONL on the 2-core
machine.

    uv run python benchmarks/bench_replay.py [--rows 1000000] [--rounds 3] [--no-kafka]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared/data/spotify/Streaming_History_Audio_sample.json"
)


def build_csv(path: Path, rows: int) -> None:
    """A Kaggle-shaped history of ``rows`` plays from the real sample."""
    plays = [r for r in json.loads(SAMPLE.read_bytes()) if r["spotify_track_uri"]]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["spotify_track_uri", "ts", "platform", "ms_played", "track_name",
                     "artist_name", "album_name", "reason_start", "reason_end", "shuffle",
                     "skipped"])  # fmt: skip
    for i in range(rows):
        r = plays[i % len(plays)]
        day = i // len(plays)
        stop = datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        stop += timedelta(days=day)
        writer.writerow([
            r["spotify_track_uri"].removeprefix("spotify:track:"),
            stop.strftime("%Y-%m-%d %H:%M:%S"), r["platform"], r["ms_played"],
            r["master_metadata_track_name"], f"{r['master_metadata_album_artist_name']} {day % 500}",
            r["master_metadata_album_album_name"], r["reason_start"], r["reason_end"],
            str(r["shuffle"]).upper(), str(bool(r["skipped"])).upper(),
        ])  # fmt: skip
    path.write_text(out.getvalue())


def child(csv_path: Path, servers: str | None, prefix: str) -> dict[str, float]:
    from backbeat.transport.kafka.settings import KafkaSettings
    from backbeat.wiring import replay

    out = Path(tempfile.mkdtemp(prefix="backbeat-bench-replay-"))
    try:
        t0 = time.perf_counter()
        loaded = replay.load([csv_path])
        t1 = time.perf_counter()
        if servers is None:
            written = replay.to_jsonl(loaded, out)
        else:
            kafka = KafkaSettings(bootstrap_servers=servers, topic_prefix=prefix)
            written = replay.to_kafka(loaded, kafka, progress=False)
        t2 = time.perf_counter()
    finally:
        shutil.rmtree(out)
    rows = sum(written.values())
    return {"rows": rows, "seconds": t2 - t0, "read_map": t1 - t0, "write": t2 - t1}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap-servers", default=None, help="Kafka (default: start tansu)")
    parser.add_argument("--no-kafka", action="store_true", help="JSONL only")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--to", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.to, args.prefix)))
        return
    from rich.console import Console

    console = Console()
    with tempfile.TemporaryDirectory(prefix="backbeat-bench-") as folder:
        path = Path(folder) / "spotify_history.csv"
        with console.status(f"building a {args.rows:,}-row spotify_history.csv…"):
            build_csv(path, args.rows)
            os.sync()  # round 1 must not race the kernel writing the CSV back
        size = path.stat().st_size / 2**20
        console.print(f"[bold]backbeat replay benchmark[/] · {os.cpu_count()} cores · "
                      f"{args.rows:,} rows, {size:,.0f} MiB CSV")  # fmt: skip
        with contextlib.ExitStack() as stack:
            servers = args.bootstrap_servers
            if servers is None and not args.no_kafka:
                sys.path.insert(0, str(ROOT))  # the broker the Kafka tests start
                from tests.support.kafka import tansu_broker

                broker = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                servers = stack.enter_context(tansu_broker(broker)).servers
            paths = [("JSONL", None)] + ([("Kafka", servers)] if servers else [])
            for label, to in paths:
                _rounds(console, label, path, to, args.rounds)


def _rounds(console: Any, label: str, path: Path, to: str | None, rounds: int) -> None:
    rates = []
    for round_ in range(1, rounds + 1):
        command = [sys.executable, __file__, "--child", str(path)]
        if to is not None:
            command += ["--to", to, "--prefix", f"bench{round_}-{os.getpid()}."]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        rates.append(r["rows"] / r["seconds"])
        console.print(
            f"  {label} round {round_}: {r['rows']:,} rows in {r['seconds']:.2f} s = "
            f"{rates[-1]:,.0f} rows/s (read + map {r['read_map']:.2f} s, write "
            f"{r['write']:.2f} s) · load {os.getloadavg()[0]:.1f}"
        )
    median = statistics.median(rates)
    bar = "█" * max(1, round(median / 1_000_000 * 40))
    target = (
        f" (target ≥ 300,000: {'met' if median >= 300_000 else 'NOT met'})" if to is None else ""
    )
    console.print(f"median {median:,.0f} rows/s to {label} [green]{bar}[/]{target}")


if __name__ == "__main__":
    main()
