"""Replay benchmark: a ``spotify_history.csv`` of a million rows into JSONL files, rows/s.

The CSV is built once from the real extended-history sample (``../shared/data/spotify``):
its 393 music plays repeated with their times moved by whole days and their artists varied,
in the Kaggle/Maven shape (``ts`` = stop time, ``TRUE``/``FALSE``). Each round runs in a fresh
process: read the CSV, parse the times, build sessions, ids and listen events, encode and
append ``listen_events.jsonl`` (what ``backbeat replay FILE --out DIR`` does). Target: at least
300,000 rows/s on the 2-core machine.

    uv run python benchmarks/bench_replay.py [--rows 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
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


def child(csv_path: Path) -> dict[str, float]:
    from backbeat.wiring import replay

    out = Path(tempfile.mkdtemp(prefix="backbeat-bench-replay-"))
    try:
        t0 = time.perf_counter()
        loaded = replay.load([csv_path])
        t1 = time.perf_counter()
        written = replay.to_jsonl(loaded, out)
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
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    from rich.console import Console

    console = Console()
    with tempfile.TemporaryDirectory(prefix="backbeat-bench-") as folder:
        path = Path(folder) / "spotify_history.csv"
        with console.status(f"building a {args.rows:,}-row spotify_history.csv…"):
            build_csv(path, args.rows)
        size = path.stat().st_size / 2**20
        console.print(f"[bold]backbeat replay benchmark[/] · {os.cpu_count()} cores · "
                      f"{args.rows:,} rows, {size:,.0f} MiB CSV")  # fmt: skip
        rates = []
        for round_ in range(1, args.rounds + 1):
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(path)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            r = json.loads(done.stdout.strip().splitlines()[-1])
            rates.append(r["rows"] / r["seconds"])
            console.print(
                f"  round {round_}: {r['rows']:,} rows in {r['seconds']:.2f} s = "
                f"{rates[-1]:,.0f} rows/s (read + map {r['read_map']:.2f} s, write "
                f"{r['write']:.2f} s) · load {os.getloadavg()[0]:.1f}"
            )
        median = statistics.median(rates)
        met = "met" if median >= 300_000 else "NOT met"
        bar = "█" * max(1, round(median / 1_000_000 * 40))
        console.print(
            f"median {median:,.0f} rows/s to JSONL [green]{bar}[/] (target ≥ 300,000: {met})"
        )


if __name__ == "__main__":
    main()
