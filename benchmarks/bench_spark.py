"""Spark benchmark: the embedded engine next to the Spark engine on ``local[2]``, same events.

One simulated run is written as JSONL files and produced, file by file and in order, into
Kafka (tansu on loopback unless ``--bootstrap-servers``; one record per produce request, see
``tests/support/kafka.py``). Each measurement is ``backbeat --json stream`` in a fresh child
process into a store of its own:

- ``embedded (JSONL)``, ``embedded (Kafka)``: the default engine;
- ``spark (JSONL)``: ``--engine spark --master local[2]`` reading the files;
- ``spark (Kafka)``: the same reading Kafka through backbeat's Python Kafka source.

Reported: events/s over the engine's own run (the Spark session start, about 10-30 s of JVM,
is shown apart as "start"), wall seconds of the whole command, and the peak memory of the
command's process tree (the JVM included). Target (issue 18): Spark's Python Kafka source
within 2x of Spark on the same events from files.

    uv run python benchmarks/bench_spark.py [--events 500000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_kafka import broker  # noqa: E402

CLI = [sys.executable, "-m", "backbeat", "--json", "stream"]
MODES = ("embedded (JSONL)", "embedded (Kafka)", "spark (JSONL)", "spark (Kafka)")


def simulate(folder: Path, events: int, users: int) -> int:
    """Write about ``events`` simulated events (a Tuesday onwards) as JSONL into ``folder``."""
    from backbeat.simulate import SimulatorSettings
    from backbeat.wiring.simulation import write_jsonl_run

    start = datetime(2026, 1, 6, tzinfo=UTC)
    hours = events / (users * 2.9)  # the default site's events per user and hour
    settings = SimulatorSettings(users=users, seed=7, start=start,
                                 end=start + timedelta(hours=hours))  # fmt: skip
    return sum(write_jsonl_run(settings, folder, progress=False).values())


def produce(folder: Path, servers: str, prefix: str) -> None:
    from tests.support.eventlog import EventLog
    from tests.support.kafka import produce_log

    from backbeat.events.schema import Topic
    from backbeat.transport.kafka.admin import TopicSpec, backbeat_topics, create_topics
    from backbeat.transport.kafka.settings import KafkaSettings

    kafka = KafkaSettings(bootstrap_servers=servers, topic_prefix=prefix)
    create_topics(kafka, backbeat_topics(kafka), TopicSpec(partitions=3))
    log = EventLog(folder)
    log.lines = {f"{t.value}.jsonl": 0 for t in Topic}
    produce_log(kafka, log, exact_ends=True)


def measure(mode: str, folder: Path, servers: str, prefix: str, work: Path) -> dict[str, Any]:
    """One run of ``mode`` in a child process: its summary, wall seconds and peak memory."""
    store = work / f"store-{uuid.uuid4().hex[:8]}"
    args = [*CLI, "--store", str(store), "--batch-size", "100000"]
    if "Kafka" in mode:
        args += ["--bootstrap-servers", servers, "--topic-prefix", prefix, "--until-end"]
    else:
        args += ["--input", str(folder)]
    if mode.startswith("spark"):
        args += ["--engine", "spark", "--master", "local[2]", "--checkpoint", str(store) + ".ckpt"]
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    wall = time.monotonic() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed ({proc.returncode}): {out[-2000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    return {"mode": mode, "events": summary["events_in"], "seconds": summary["seconds"],
            "wall": wall, "peak_mib": peak / 2**20,
            "events_per_s": summary["events_in"] / max(summary["seconds"], 1e-9)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--bootstrap-servers", default=None)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="backbeat-bench-spark-") as tmp, \
            broker(args.bootstrap_servers) as (servers, _pid, what):  # fmt: skip
        work = Path(tmp)
        with console.status("simulating and producing the events…"):
            count = simulate(work / "in", args.events, args.users)
            prefix = f"bench{uuid.uuid4().hex[:6]}."
            produce(work / "in", servers, prefix)
        console.print(f"[bold]backbeat Spark benchmark[/] · {psutil.cpu_count()} cores · "
                      f"{count:,} events · Kafka: {what}")  # fmt: skip
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        for round_ in range(args.rounds):
            for mode in MODES:
                with console.status(f"round {round_ + 1}: {mode}…"):
                    runs[mode].append(measure(mode, work / "in", servers, prefix, work))
        table = Table("engine (source)", "events", "events/s", "", "start + run s",
                      "peak memory")  # fmt: skip
        best = max(statistics.median(r["events_per_s"] for r in rs) for rs in runs.values())
        medians = {}
        for mode, rs in runs.items():
            rate = statistics.median(r["events_per_s"] for r in rs)
            medians[mode] = rate
            last = rs[-1]
            table.add_row(mode, f"{last['events']:,}", f"{rate:,.0f}",
                          "█" * max(1, round(rate / best * 30)),
                          f"{last['wall'] - last['seconds']:.0f} + {last['seconds']:.1f}",
                          f"{last['peak_mib']:,.0f} MiB")  # fmt: skip
        console.print(table)
        ratio = medians["spark (JSONL)"] / medians["spark (Kafka)"]
        verdict = "met" if ratio <= 2 else "NOT met"
        console.print(f"Spark from files / Spark from Kafka: {ratio:.2f}x "
                      f"(target ≤ 2x: {verdict})")  # fmt: skip
        print(json.dumps({"runs": runs, "ratio": ratio}))


if __name__ == "__main__":
    main()
