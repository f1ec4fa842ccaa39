"""Lake and warehouse benchmark: what writing the raw events to the Parquet lake costs the
stream, what ``compact-lake`` does to it, and how fast the Iceberg warehouse loads and
de-duplicates it.

One event log (``tests/support/eventlog.py``'s ``generate``: ``--sessions`` sessions over
``--minutes`` minutes, ~32 events a session over the four topics, no trouble injected) is
streamed by ``backbeat stream`` twice into a fresh embedded DuckDB store, once without and
once with ``--lake`` (same batch size); events/s are from the command's own ``seconds``
(CLI start-up excluded) and the lake's MB/s is the bytes it holds over the lake run's
seconds. With ``--spark-sessions N`` a log of N sessions is also streamed by
``--engine spark`` into a lake (JVM start-up included: Spark's figure is wall time). Then, in
this process through the library (no CLI start-up measured): ``compact_lake`` (files per
topic-hour before and after), ``load_hour`` for every topic-hour, ``dedup_hour`` for every
listen hour (both recorded as ``batch run`` records them), then ``catch_up``, which finds
nothing left to load and only compacts, expires and cleans: files per hour in staging and
gold after it. ``--profile`` adds a cProfile top of ``load_hour`` on the biggest hour.

    uv run python benchmarks/bench_lake.py [--sessions 31000] [--minutes 720]
        [--batch-size 20000] [--spark-sessions 0] [--profile] [--json FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from bench_embedded import machine  # noqa: E402

CLI = (sys.executable, "-m", "backbeat", "--json")


def make_log(folder: Path, sessions: int, minutes: int) -> tuple[int, int]:
    """Write the JSONL log into ``folder``; (events, bytes)."""
    from tests.support.eventlog import generate, write_log

    tables = generate(sessions, minutes, seed=1)
    write_log(folder, tables, seed=2, trouble=None)
    size = sum(f.stat().st_size for f in folder.glob("*.jsonl"))
    return sum(t.num_rows for t in tables.values()), size


def stream(log: Path, store: Path, batch_size: int, *extra: str) -> dict[str, Any]:
    """``backbeat stream`` of ``log``: its JSON report plus the wall seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    command = [*CLI, "stream", "--input", str(log), "--store", str(store),
               "--batch-size", str(batch_size), *extra]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["wall_s"] = wall
    return report


def lake_files(lake_url: str) -> dict[str, Any]:
    """Live files and bytes of the lake, per topic-hour."""
    from backbeat.events.schema import Topic
    from backbeat.sinks.lake.layout import Lake

    lake = Lake.open(lake_url)
    per_hour: dict[str, list[tuple[int, int]]] = {}
    for topic in Topic:
        per_hour[topic.value] = [
            (len(files), sum(f.size or 0 for f in files))
            for files in (lake.live_files(topic, h) for h in lake.hours(topic))
        ]
    pairs = [p for hours in per_hour.values() for p in hours]
    return {
        "topic_hours": len(pairs),
        "files": sum(n for n, _ in pairs),
        "bytes": sum(b for _, b in pairs),
        "max_files_per_hour": max((n for n, _ in pairs), default=0),
        "per_topic": {
            t: {"hours": len(h), "files": sum(n for n, _ in h), "bytes": sum(b for _, b in h)}
            for t, h in per_hour.items()
        },
    }


def warehouse(lake_url: str, uri: str, profile: bool) -> dict[str, Any]:
    """Load every hour, de-duplicate every listen hour, then ``catch_up`` (tidying only)."""
    from backbeat.events.schema import Topic
    from backbeat.sinks.lake.layout import Lake
    from backbeat.warehouse import jobs
    from backbeat.warehouse.catalog import Warehouse
    from backbeat.warehouse.dedup import dedup_hour
    from backbeat.warehouse.load import load_hour
    from backbeat.warehouse.maintain import files_per_hour
    from backbeat.warehouse.run import catch_up

    wh = Warehouse.open(Lake.open(lake_url), uri)
    loaded = []
    t0 = time.perf_counter()
    for topic in Topic:
        loaded += [load_hour(wh, topic, hour) for hour in wh.lake.hours(topic)]
    load_s = time.perf_counter() - t0
    jobs.record(wh, [x.done() for x in loaded])
    listens = [x for x in loaded if x.topic is Topic.LISTEN]
    t0 = time.perf_counter()
    deduped = [dedup_hour(wh, x.hour, x.fingerprint) for x in listens]
    dedup_s = time.perf_counter() - t0
    jobs.record(wh, deduped)

    def spread(name: str) -> dict[str, int]:
        files = files_per_hour(wh.refresh(name))
        return {"hours": len(files), "files": sum(files.values()), "max": max(files.values())}

    before = {"staging listens": spread(Topic.LISTEN.value), "gold": spread("listens")}
    t0 = time.perf_counter()
    report = catch_up(wh, now_ms=2**53)
    tidy_s = time.perf_counter() - t0
    after = {"staging listens": spread(Topic.LISTEN.value), "gold": spread("listens")}
    result: dict[str, Any] = {
        "hours_loaded": len(loaded),
        "rows_loaded": sum(x.rows for x in loaded),
        "load_s": load_s,
        "listen_hours": len(listens),
        "staged_listens": sum(x.rows for x in listens),
        "gold_rows": sum(d.rows for d in deduped),
        "dedup_s": dedup_s,
        "catch_up_s": tidy_s,
        "catch_up_loaded": report.loaded,
        "files_before_tidy": before,
        "files_after_tidy": after,
    }
    if profile:
        biggest = max(loaded, key=lambda x: x.rows)
        prof = cProfile.Profile()
        prof.runcall(load_hour, wh, biggest.topic, biggest.hour)
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(18)
        result["profile"] = f"load_hour({biggest.topic.value}, {biggest.rows:,} rows)\n"
        result["profile"] += out.getvalue()
    return result


def compact(lake_url: str) -> dict[str, Any]:
    from datetime import timedelta

    from backbeat.sinks.lake.compact import compact_lake
    from backbeat.sinks.lake.layout import Lake

    t0 = time.perf_counter()
    report = compact_lake(Lake.open(lake_url), orphan_age=timedelta(0))
    return {"seconds": time.perf_counter() - t0, **report.__dict__}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=31_000, help="~32 events a session")
    parser.add_argument("--minutes", type=int, default=720, help="sessions start over these")
    parser.add_argument("--batch-size", type=int, default=20_000, help="events per micro-batch")
    parser.add_argument("--spark-sessions", type=int, default=0,
                        help="also stream a log of this many sessions with --engine spark "
                        "(0: skip; Spark 4.3 local[2] starts in ~30-50 s here)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="cProfile top of load_hour")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    bench(args, Console())


def bench(args: argparse.Namespace, console: Console) -> None:
    loads = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="backbeat-bench-lake-") as tmp_name:
        tmp = Path(tmp_name)
        with console.status("generating the log…"):
            events, size = make_log(tmp / "in", args.sessions, args.minutes)
        console.print(
            f"[bold]backbeat lake benchmark[/] · {machine()} · {events:,} events "
            f"({size / 2**20:,.0f} MiB JSONL: {args.sessions:,} sessions over "
            f"{args.minutes} min), batches of {args.batch_size:,} · load average "
            f"{loads[0][0]:.1f} / {loads[0][1]:.1f} / {loads[0][2]:.1f}"
        )
        runs: dict[str, Any] = {}
        for label, extra in (("stream, no lake", ()), ("stream --lake", ("--lake",))):
            with console.status(f"{label}…"):
                lake = tmp / "lake"
                run = stream(tmp / "in", tmp / f"store-{len(runs)}", args.batch_size,
                             *[a for e in extra for a in (e, str(lake))])  # fmt: skip
            runs[label] = run
            console.print(f"  {label:<20} {run['events_in'] / run['seconds']:>10,.0f} ev/s")
        lake_stats = lake_files(str(tmp / "lake"))
        spark = None
        if args.spark_sessions:
            spark = _spark(tmp, args, console)
        with console.status("compact-lake…"):
            compacted = compact(str(tmp / "lake"))
            after = lake_files(str(tmp / "lake"))
        with console.status("warehouse: load, dedup, catch_up…"):
            wh = warehouse(str(tmp / "lake"), f"sqlite:///{tmp / 'wh.db'}", args.profile)
        loads.append(os.getloadavg())
    figures = {"machine": machine(), "events": events, "jsonl_bytes": size,
               "sessions": args.sessions, "minutes": args.minutes,
               "batch_size": args.batch_size, "load_average": [loads[0], loads[-1]],
               "stream": runs, "lake": lake_stats, "spark": spark,
               "compact_lake": {**compacted, "lake_after": after}, "warehouse": wh}  # fmt: skip
    _print(console, figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def _spark(tmp: Path, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """The spark engine into a lake, beside the embedded one, on a log of its own size."""
    folder = tmp / "spark"
    n, _ = make_log(folder / "in", args.spark_sessions, args.minutes)
    result: dict[str, Any] = {"events": n}
    for engine, extra in (
        ("embedded", ()),
        ("spark", ("--engine", "spark", "--trigger", "available-now",
                   "--checkpoint", str(folder / "checkpoint"))),
    ):  # fmt: skip
        with console.status(f"{engine} --lake on {n:,} events…"):
            run = stream(folder / "in", folder / f"store-{engine}", args.batch_size,
                         "--lake", str(folder / f"lake-{engine}"), *extra)  # fmt: skip
        run["lake"] = lake_files(str(folder / f"lake-{engine}"))
        result[engine] = run
        console.print(f"  {engine} --lake, {n:,} events: {run['wall_s']:.1f} s wall")
    counts = {e: _rows_per_topic_hour(folder / f"lake-{e}") for e in ("embedded", "spark")}
    result["same_rows_per_topic_hour"] = counts["embedded"] == counts["spark"]
    console.print("  Spark's lake holds the embedded engine's rows per topic and hour: "
                  + ("yes" if result["same_rows_per_topic_hour"] else "NO"))  # fmt: skip
    return result


def _rows_per_topic_hour(lake: Path) -> dict[tuple[str, int], int]:
    """How many rows each (topic, event hour) of a lake holds."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    counts: dict[tuple[str, int], int] = {}
    for topic in sorted(p.name for p in lake.iterdir() if not p.name.startswith(("_", "."))):
        ts = ds.dataset(lake / topic, format="parquet").to_table(columns=["ts"]).column("ts")
        hours = pc.value_counts(pc.divide(ts, 3_600_000))
        for item in hours.to_pylist():
            counts[(topic, int(item["values"]))] = int(item["counts"])
    return counts


def _print(console: Console, f: dict[str, Any]) -> None:
    plain, lake = f["stream"]["stream, no lake"], f["stream"]["stream --lake"]
    stats, mb = f["lake"], f["lake"]["bytes"] / 1e6
    table = Table(title="lake write: backbeat stream, same log and store kind",
                  header_style="bold magenta")  # fmt: skip
    for col in ("run", "events", "seconds", "events/s", "vs no lake", "lake MB", "MB/s",
                "topic-hours", "files", "files/hour (max)", "MB/file", ""):  # fmt: skip
        table.add_column(col, justify="left" if col in ("run", "") else "right")
    top = max(r["events_in"] / r["seconds"] for r in (plain, lake))
    for name, r in (("embedded, no lake", plain), ("embedded --lake", lake)):
        rate = r["events_in"] / r["seconds"]
        has = r is lake
        table.add_row(
            name, f"{r['events_in']:,}", f"{r['seconds']:.1f}", f"{rate:,.0f}",
            f"{rate / (plain['events_in'] / plain['seconds']):.0%}",
            f"{mb:,.1f}" if has else "-", f"{mb / r['seconds']:,.1f}" if has else "-",
            str(stats["topic_hours"]) if has else "-", str(stats["files"]) if has else "-",
            f"{stats['files'] / stats['topic_hours']:.1f} ({stats['max_files_per_hour']})"
            if has else "-",
            f"{mb / max(stats['files'], 1):.2f}" if has else "-",
            "[green]" + "█" * max(1, round(rate / top * 24)),
        )  # fmt: skip
    spark = f["spark"]
    if spark:
        for engine in ("embedded", "spark"):
            r, s = spark[engine], spark[engine]["lake"]
            smb = s["bytes"] / 1e6
            table.add_row(
                f"{engine} --lake (wall, start-up incl.)", f"{r['events_in']:,}",
                f"{r['wall_s']:.1f}", f"{r['events_in'] / r['wall_s']:,.0f}", "-",
                f"{smb:,.1f}", f"{smb / r['wall_s']:,.1f}", str(s["topic_hours"]),
                str(s["files"]), f"{s['files'] / max(s['topic_hours'], 1):.1f} "
                f"({s['max_files_per_hour']})", f"{smb / max(s['files'], 1):.2f}", "",
            )  # fmt: skip
    console.print(table)
    if spark:
        wrote = [t for t, v in spark["spark"]["lake"]["per_topic"].items() if v["files"]]
        console.print(f"Spark wrote these topics to the lake: {', '.join(wrote) or 'none'}")
    extra = lake["seconds"] - plain["seconds"]
    console.print(
        f"seconds: the command's own (no CLI start-up). The lake adds {extra:+.1f} s "
        f"({mb / extra:,.1f} MB/s of that time)" if extra > 0 else
        f"seconds: the command's own. The lake added no measurable time ({extra:+.1f} s)"
    )  # fmt: skip
    if not spark:
        console.print("Spark: not measured (--spark-sessions N to add it)")
    c, wh = f["compact_lake"], f["warehouse"]
    table = Table(title="compact-lake and the warehouse (in-process, library calls: no CLI "
                        "start-up)", header_style="bold magenta")  # fmt: skip
    for col in ("step", "seconds", "rows", "rows/s", "files before", "files after", "hours"):
        table.add_column(col, justify="left" if col == "step" else "right")
    table.add_row("compact-lake", f"{c['seconds']:.1f}", "-", "-", str(stats["files"]),
                  str(c["lake_after"]["files"]), f"{c['hours']} merged of "
                  f"{stats['topic_hours']}")  # fmt: skip
    table.add_row("load_hour, every topic-hour", f"{wh['load_s']:.1f}", f"{wh['rows_loaded']:,}",
                  f"{wh['rows_loaded'] / wh['load_s']:,.0f}", "-", "-",
                  str(wh["hours_loaded"]))  # fmt: skip
    table.add_row("dedup_hour, every listen hour", f"{wh['dedup_s']:.1f}",
                  f"{wh['staged_listens']:,} -> {wh['gold_rows']:,}",
                  f"{wh['staged_listens'] / wh['dedup_s']:,.0f}", "-", "-",
                  str(wh["listen_hours"]))  # fmt: skip
    for name in ("staging listens", "gold"):
        b, a = wh["files_before_tidy"][name], wh["files_after_tidy"][name]
        table.add_row(f"catch_up tidy: {name}", f"{wh['catch_up_s']:.1f}", "-", "-",
                      f"{b['files']} (max {b['max']}/h)", f"{a['files']} (max {a['max']}/h)",
                      str(a["hours"]))  # fmt: skip
    console.print(table)
    before, after = f["load_average"]
    console.print(f"load average before {before[0]:.1f}, after {after[0]:.1f} (1 min)")
    if "profile" in wh:
        console.print(wh["profile"], markup=False, highlight=False)


if __name__ == "__main__":
    main()
