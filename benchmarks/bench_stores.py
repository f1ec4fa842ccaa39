"""Stores benchmark (issue 19): the embedded engine into DuckDB, into PostgreSQL, and into DuckDB
with the MongoDB sink, on the same events; then ``/api/top-songs`` served from PostgreSQL.

The benchmark starts its own servers, as the tests do (``tests/support/postgres.py``: a
throwaway PostgreSQL cluster, no fsync, ``pg_stat_statements`` preloaded;
``tests/support/mongo.py``: secantusd-py), unless ``BACKBEAT_BENCH_POSTGRES`` /
``BACKBEAT_BENCH_MONGO`` name running ones. Each measurement is a fresh child process (a
fresh store: a new folder, database or MongoDB database) running the ``Pipeline`` on the
simulator read ahead in a second process (as ``bench_embedded.py``'s ``embedded`` mode), with
the same seed, the same number of events and the same batch size, so every variant commits
the same batches. Rounds run the variants in turn; tables show the median round.

Reported per variant: events/s and its ratio to DuckDB; the engine's ``commit`` phase (store
transaction plus sink writes, on the commit thread, overlapped with the next batch) and
``commit wait`` (the engine idle until the batch before was committed) as shares of the run;
CPU seconds of this client (engine + read-ahead) and of the database server's process tree
(psutil). For PostgreSQL, where the commit goes: each statement kind timed on the client
around the store's calls and on the server by ``pg_stat_statements`` (exec time; a COPY's
includes receiving its rows). Then ``stores_serve.py``: a real ``backbeat serve`` over
PostgreSQL under ``web_load.py``'s paced 2,000 req/s on ``/api/top-songs``, over the last
round's database (idle) and over one a live stream commits into meanwhile.

secantusd-py, the MongoDB-protocol server of the tests, is pure Python and scans a collection
per upsert (1.1 ms an upsert into 100 documents, 2.7 ms into 400, here; one batch of 20,138
events took it 634 s): the MongoDB figure measures secantusd, not MongoDB. With it the
MongoDB variant runs on the first batch only (``--mongo-events``, one round:
``--mongo-rounds``), beside a DuckDB run of the same batch; with ``BACKBEAT_BENCH_MONGO`` on
all of ``--events``.

    uv run python benchmarks/bench_stores.py [--events 1100000] [--batch-size 20000]
        [--rounds 3] [--mongo-events 500] [--serve-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from bench_embedded import _median, machine  # noqa: E402
from stores_probe import OTHER, ServerCpu, StatementTimer, server_statements  # noqa: E402

START = datetime(2026, 1, 5, tzinfo=UTC)
STEP_MS = 60_000  # one simulated minute per step (~1,000 events at 20,000 users)
VARIANTS = ("duckdb", "postgresql", "duckdb + mongo")
PG_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "max_wal_size": "4GB"}


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Run one variant in this process and return its figures."""
    from backbeat.engine.base import EngineSettings
    from backbeat.engine.pipeline import Pipeline
    from backbeat.simulate.simulator import Simulator, SimulatorSettings
    from backbeat.sinks.base import ResultSink, SinkSpec, Store
    from backbeat.sinks.duckdb.store import DuckDBStore
    from backbeat.sinks.postgres.store import PostgresStore
    from backbeat.sinks.registry import open_sinks
    from backbeat.transport.inprocess import SimulatorSource
    from backbeat.transport.prefetch import Prefetching

    variant, folder = args.child, Path(tempfile.mkdtemp(prefix="backbeat-bench-stores-"))
    timer = StatementTimer() if variant == "postgresql" else None
    store: Store = PostgresStore(args.postgres) if timer else DuckDBStore.at(str(folder))
    sinks: list[ResultSink] = []
    if variant == "duckdb + mongo":
        sinks = open_sinks([SinkSpec("mongo", options={"url": args.mongo})])
        sink_seconds = _time_writes(sinks[0])
    sim = Simulator(SimulatorSettings(users=args.users, seed=1, start=START))
    source = Prefetching(SimulatorSource(sim, step_ms=STEP_MS), args.batch_size, worker="process")
    settings = EngineSettings(max_batch_events=args.batch_size)
    pipeline = Pipeline(source, store, sinks=sinks, settings=settings)
    server = ServerCpu.of_server(args.postgres if variant == "postgresql" else args.mongo)
    me = ServerCpu(psutil.Process())
    with timer.installed() if timer else _nothing():
        t0 = time.perf_counter()
        report = pipeline.run(max_events=args.events)
        seconds = time.perf_counter() - t0
    client_cpu, server_cpu = me.used(), server.used() if server else None
    pipeline.close()
    store.close()
    shutil.rmtree(folder, ignore_errors=True)
    result: dict[str, Any] = {
        "variant": variant,
        "events": report.events_in,
        "batches": report.batches,
        "seconds": seconds,
        "events_per_s": report.events_in / seconds,
        "phases": report.phases,
        "client_cpu_s": client_cpu,
        "server_cpu_s": server_cpu,
    }
    if timer:
        result["client_statements"] = timer.seconds
        result["server_statements"] = server_statements(args.postgres)
    if sinks:
        result["sink_write_s"] = sink_seconds()
    return result


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _time_writes(sink: Any) -> Callable[[], float]:
    """Wrap ``sink.write`` with a clock; the seconds spent in it so far."""
    spent = [0.0]
    write = sink.write

    def timed(*args: Any) -> None:
        t0 = time.perf_counter()
        try:
            write(*args)
        finally:
            spent[0] += time.perf_counter() - t0

    sink.write = timed
    return lambda: spent[0]


def run_child(
    variant: str, events: int, args: argparse.Namespace, pg: str | None, mongo: str | None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", variant, "--events", str(events),
               "--users", str(args.users), "--batch-size", str(args.batch_size)]  # fmt: skip
    command += ["--postgres", pg] if pg else []
    command += ["--mongo", mongo] if mongo else []
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@contextmanager
def postgres() -> Iterator[tuple[str | None, str]]:
    """A server's base URL (None: none here) and what it is."""
    given = os.environ.get("BACKBEAT_BENCH_POSTGRES")
    if given:
        yield given.rstrip("/"), "BACKBEAT_BENCH_POSTGRES"
        return
    from tests.support.postgres import missing_server, postgres_server, server_binaries

    why = missing_server()
    if why:
        yield None, why
        return
    version = getattr(server_binaries(), "parent", Path("?")).name
    with postgres_server(settings=PG_SETTINGS) as server:
        yield server.url, f"PostgreSQL {version}, a throwaway cluster (fsync off) on loopback"


def mongo_source() -> tuple[bool, str]:
    """Whether a MongoDB server can be had, and what it is."""
    if os.environ.get("BACKBEAT_BENCH_MONGO"):
        return True, "BACKBEAT_BENCH_MONGO"
    from tests.support.mongo import secantus_binary

    if secantus_binary() is None:
        return False, "no MongoDB server: secantusd-py is not installed"
    return True, (
        "secantusd-py, the tests' pure-Python MongoDB-protocol server (a fresh one per run): "
        "NOT MongoDB, its figure measures secantusd"
    )


@contextmanager
def mongo_server(folder: Path) -> Iterator[str]:
    """The URL of ``BACKBEAT_BENCH_MONGO``, or of a fresh secantusd-py (data in ``folder``)."""
    given = os.environ.get("BACKBEAT_BENCH_MONGO")
    if given:
        yield given
        return
    from tests.support.mongo import secantus_server

    with secantus_server(folder) as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=1_100_000, help="~54 batches: one compaction (every 50)"
    )
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=20_000, help="events per micro-batch")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (medians shown)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument(
        "--mongo-events", type=int, default=None,
        help="events of the MongoDB variant (and of a DuckDB run beside it), whole batches; "
        "default: one batch on secantusd-py, all with BACKBEAT_BENCH_MONGO",
    )  # fmt: skip
    parser.add_argument(
        "--mongo-rounds", type=int, default=1,
        help="rounds of the MongoDB variant (~10 min each on secantusd-py)",
    )  # fmt: skip
    parser.add_argument("--serve-seconds", type=int, default=30, help="0: skip the API phases")
    parser.add_argument("--serve-warmup", type=float, default=15.0, help="seconds of stream first")
    parser.add_argument("--live-users", type=int, default=35_000, help="the live stream's users")
    parser.add_argument("--rate", type=int, default=2_000, help="req/s offered to the API")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--postgres", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mongo", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "ingest":
        from stores_serve import ingest

        ingest(args.postgres, args.live_users)
    elif args.child:
        print(json.dumps(child(args)))
    else:
        # SIGTERM (timeout, CI) unwinds like Ctrl-C: the servers started here are stopped.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        bench(args, Console())


def bench(args: argparse.Namespace, console: Console) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="backbeat-bench-stores-") as tmp,
        postgres() as (pg, pg_what),
    ):
        has_mongo, mongo_what = mongo_source()
        console.print(
            f"[bold]backbeat stores benchmark[/] · {machine()} · {args.events:,} simulated "
            f"events, {args.users:,} users, batches of {args.batch_size:,} · "
            f"{args.rounds} round(s), median shown"
        )
        console.print(f"  PostgreSQL: {pg_what}\n  MongoDB: {mongo_what}")
        plan = _plan(args, pg, has_mongo, console)
        runs: dict[str, list[dict[str, Any]]] = {}
        last_db = None
        for round_ in range(1, args.rounds + 1):
            for label, variant, events in plan:
                if variant == "duckdb + mongo" and round_ > args.mongo_rounds:
                    continue
                pg_db = mongo_db = None
                what = f"round {round_}/{args.rounds}: {label}, {events:,} events"
                with console.status(f"{what}…"), ExitStack() as stack:
                    if variant == "postgresql":
                        pg_db = last_db = _fresh_postgres(pg)  # type: ignore[arg-type]
                    if variant == "duckdb + mongo":
                        server = mongo_server(Path(tmp) / f"mongo-{round_}")
                        mongo_db = _fresh_mongo(stack.enter_context(server))
                    r = run_child(variant, events, args, pg_db, mongo_db)
                r["label"] = label
                runs.setdefault(label, []).append(r)
                console.print(
                    f"  {what:<58} {r['events_per_s']:>10,.0f} ev/s  ({r['batches']} batches, "
                    f"load {os.getloadavg()[0]:.1f})"
                )
        results = [_median(rs) for rs in runs.values()]
        _rates(console, results)
        pg_result = next((r for r in results if r["variant"] == "postgresql"), None)
        if pg_result:
            _statements(console, pg_result)
        serve = []
        if pg and last_db and args.serve_seconds:
            serve = _serve(args, last_db, pg, Path(tmp), console)
        if args.json:
            figures = {"machine": machine(), "results": results, "serve": serve}
            args.json.write_text(json.dumps(figures, indent=2))


def _plan(
    args: argparse.Namespace, pg: str | None, has_mongo: bool, console: Console
) -> list[tuple[str, str, int]]:
    """(label, variant, events) of each measurement in a round."""
    plan = []
    subset = args.mongo_events
    if subset is None:
        subset = args.events if os.environ.get("BACKBEAT_BENCH_MONGO") else args.batch_size
    subset = min(subset, args.events)
    for variant in args.variants:
        if variant == "postgresql" and pg is None:
            console.print("  [yellow]skipped[/] postgresql: no server")
        elif variant == "duckdb + mongo" and not has_mongo:
            console.print("  [yellow]skipped[/] duckdb + mongo: no server")
        elif variant == "duckdb + mongo" and subset < args.events:
            if "duckdb" in args.variants:
                plan.append((f"duckdb (first {subset:,})", "duckdb", subset))
            plan.append((f"duckdb + mongo (first {subset:,})", variant, subset))
        else:
            plan.append((variant, variant, args.events))
    return plan


def _fresh_postgres(server: str) -> str:
    from tests.support.postgres import fresh_database

    from stores_probe import reset_statements

    url = fresh_database(server)
    reset_statements(url)
    return url


def _fresh_mongo(server: str) -> str:
    from tests.support.mongo import database_url

    return database_url(server, f"bench{uuid.uuid4().hex[:10]}")


def _rates(console: Console, results: list[dict[str, Any]]) -> None:
    table = Table(title="events per second, median round (higher is better)",
                  header_style="bold magenta")  # fmt: skip
    for col in ("variant", "events", "batches", "seconds", "events/s", "rounds", "vs DuckDB",
                "commit", "commit wait", "client CPU", "server CPU", ""):  # fmt: skip
        table.add_column(col, justify="left" if col in ("variant", "") else "right")
    duck = {r["events"]: r for r in results if r["variant"] == "duckdb"}
    top = max(r["events_per_s"] for r in results)
    for r in results:
        base = duck.get(r["events"])
        ratio = f"{r['events_per_s'] / base['events_per_s']:.0%}" if base else "-"
        sec, phases = r["seconds"], r["phases"]
        server = "-" if r["server_cpu_s"] is None else f"{r['server_cpu_s'] / sec:.2f} cores"
        table.add_row(
            r["label"], f"{r['events']:,}", str(r["batches"]), f"{sec:.1f}",
            f"{r['events_per_s']:,.0f}", " / ".join(f"{x:,}" for x in r["rounds"]), ratio,
            _share(phases.get("commit", 0.0), sec), _share(phases.get("commit wait", 0.0), sec),
            f"{r['client_cpu_s'] / sec:.2f} cores", server,
            "[green]" + "█" * max(1, round(r["events_per_s"] / top * 24)),
        )  # fmt: skip
    console.print(table)
    console.print(
        "commit: seconds in the store's transaction and the sinks' writes (on the commit "
        "thread, overlapped with the next batch) and their share of the run; commit wait: the "
        "engine idle until the batch before was committed. CPU: cores busy on average."
    )
    pg = next((r for r in results if r["variant"] == "postgresql"), None)
    if pg and pg["events"] in duck:
        ratio = pg["events_per_s"] / duck[pg["events"]]["events_per_s"]
        verdict = "met" if ratio >= 0.5 else "NOT met"
        console.print(f"PostgreSQL store / DuckDB store: {ratio:.0%} (target >= 50 %: {verdict})")
    mongo = next((r for r in results if r["variant"] == "duckdb + mongo"), None)
    if mongo:
        console.print(
            f"MongoDB sink: {mongo['sink_write_s']:.1f} s of {mongo['seconds']:.1f} in its "
            "writes, against secantusd-py (pure Python) unless BACKBEAT_BENCH_MONGO: the "
            "figure measures secantusd, not MongoDB"
        )


def _share(seconds: float, of: float) -> str:
    return f"{seconds:.1f} s ({seconds / of:.0%})"


def _statements(console: Console, r: dict[str, Any]) -> None:
    client: dict[str, float] = r["client_statements"]
    server: dict[str, dict[str, float]] = r["server_statements"] or {}
    whole = client.pop("whole commit", 0.0)
    client[OTHER] = whole - sum(client.values())
    table = Table(title=f"where the PostgreSQL store's commit goes ({r['batches']} batches, "
                        f"{whole:.1f} s in PostgresStore.commit)",
                  header_style="bold magenta")  # fmt: skip
    for col in ("statement", "client s", "share", "server exec s", "calls", "rows"):
        table.add_column(col, justify="left" if col == "statement" else "right")
    for kind in sorted(set(client) | set(server), key=lambda k: -client.get(k, 0.0)):
        s = server.get(kind)
        c = client.get(kind)
        table.add_row(
            kind, "" if c is None else f"{c:.2f}", "" if c is None else f"{c / whole:.0%}",
            "-" if s is None else f"{s['seconds']:.2f}", "-" if s is None else f"{s['calls']:,}",
            "-" if s is None else f"{s['rows']:,}",
        )  # fmt: skip
    console.print(table)
    console.print(
        "client s: wall time around the store's calls (a COPY's includes encoding its rows "
        "as CSV); server exec s: pg_stat_statements (a COPY's includes receiving its rows)"
    )


def _serve(
    args: argparse.Namespace, last_db: str, pg: str, work: Path, console: Console
) -> list[dict[str, Any]]:
    from stores_serve import measure

    phases = []
    for name, database, stream in (
        ("idle", last_db, False),
        ("ingest", _fresh_postgres(pg), True),
    ):  # fmt: skip
        with console.status("") as status:
            phases.append(
                measure(name, database, work, stream=stream, warmup=args.serve_warmup,
                        seconds=args.serve_seconds, rate=args.rate,
                        connections=args.connections, live_users=args.live_users,
                        status=status.update)
            )  # fmt: skip
    table = Table(title=f"/api/top-songs served from PostgreSQL by `backbeat serve`, "
                        f"{args.rate:,} req/s offered on {args.connections} connections",
                  header_style="bold magenta")  # fmt: skip
    for col in ("store", "req/s", "p50 ms", "p99 ms", "max ms", "failed", "stream ev/s",
                "serve CPU", "PostgreSQL CPU"):  # fmt: skip
        table.add_column(col, justify="left" if col == "store" else "right")
    for p in phases:
        what = ("idle: the last round's database" if p["phase"] == "idle"
                else "a live stream committing into it")  # fmt: skip
        table.add_row(
            what, f"{p['requests'] / p['seconds']:,.0f}", f"{p['p50_ms']:.1f}",
            f"{p['p99_ms']:.1f}", f"{p['max_ms']:.0f}", f"{p['failed']:.0f}",
            f"{p['events_per_s']:,.0f}", f"{p['serve_cpu']:.2f} cores",
            f"{p['postgres_cpu']:.2f} cores",
        )  # fmt: skip
    console.print(table)
    return phases


if __name__ == "__main__":
    main()
