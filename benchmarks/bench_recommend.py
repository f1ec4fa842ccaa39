"""Recommendation benchmark: full training on 20,000 listeners x a week, the per-batch update,
the engine with live updates on and off, and the recommendations route under 1,000 req/s.

1. The simulator writes ``--users`` listeners for ``--days - 1`` days (the history) and the
   same population's next day (the live day); ``backbeat stream`` puts the history in a fresh
   embedded store.
2. **Training** (and then ``evaluate``'s numbers over every listener: the default time split,
   the model against the most-played list), in this process through the library, phase by
   phase: the store's
   ``Interactions`` (one SQL aggregate over the listens), tracks and sparse history, ALS
   (64 factors, 15 iterations, one BLAS thread, implicit's own threads), and putting the model
   on the shelf.
3. **The engine, updates off vs on**: the store is copied twice; ``backbeat stream`` of the live
   day into one copy, then ``backbeat stream --recommend`` into the other (the recommender
   folds every commit in the engine's process: events/s from the command's own ``seconds``).
4. **Per-batch update**: a recommender over the updated copy loads the model, then folds the
   live day's batches one at a time (``refresh(upto=b)``): seconds and listeners per batch.
5. **Serving**: ``backbeat serve --recommend`` over that copy; ``web_load.py`` offers each of
   ``--rates`` req/s in turn (evenly spaced, latency from each request's due time) to
   ``/api/users/{n}/recommendations?limit=10`` for listeners 1..``--users`` in turn.

    uv run python benchmarks/bench_recommend.py [--users 20000] [--days 7]
        [--rates 1000,300] [--seconds 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_embedded import machine  # noqa: E402
from web_clients import paced  # noqa: E402

CLI = (sys.executable, "-m", "backbeat", "--json")
START = datetime(2026, 11, 2, tzinfo=UTC)
ENV = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}


def simulate(out: Path, users: int, start: datetime, days: float) -> None:
    from backbeat.simulate.simulator import SimulatorSettings
    from backbeat.wiring import write_jsonl_run

    settings = SimulatorSettings(users=users, seed=5, start=start, end=start + timedelta(days=days))
    write_jsonl_run(settings, out, progress=True)


def stream(log: Path, store: Path, *extra: str) -> dict[str, Any]:
    command = [*CLI, "stream", "--input", str(log), "--store", str(store), *extra]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["events_per_s"] = report["events_in"] / report["seconds"]
    return report


def train(store: Path) -> dict[str, Any]:
    """Train through the library, timing each phase; the model goes on the store's shelf."""
    from backbeat.recommend import store as shelved
    from backbeat.recommend.history import History
    from backbeat.recommend.items import build_items
    from backbeat.recommend.model import Params
    from backbeat.recommend.model import train as fit
    from backbeat.recommend.service import latest_batch
    from backbeat.sinks import queries as q
    from backbeat.sinks.registry import open_reader, open_shelf

    reader, shelf = open_reader(str(store)), open_shelf(str(store))
    phases: dict[str, float] = {}
    t = time.perf_counter()
    upto = latest_batch(reader)
    rows = reader.run(q.Interactions(batches=(0, upto)))
    phases["read interactions"] = time.perf_counter() - t
    t = time.perf_counter()
    items = build_items(None, rows)
    history, _ = History.empty(len(items)).add(rows, items)
    phases["tracks and history"] = time.perf_counter() - t
    t = time.perf_counter()
    model = fit(history, items, Params(), upto)
    phases["fit ALS"] = time.perf_counter() - t
    t = time.perf_counter()
    model = shelved.save(shelf, model)
    phases["save"] = time.perf_counter() - t
    shelf.close()
    reader.close()
    return {
        "phases": phases,
        "seconds": sum(phases.values()),
        "listeners": history.n_users,
        "tracks": len(items),
        "pairs": rows.num_rows,
        "listens": int(sum(rows["plays"].to_pylist())),
        "version": model.version,
        "through_batch": upto,
    }


def evaluation(store: Path, users: int) -> dict[str, Any]:
    """``backbeat recommend evaluate``'s numbers (default split) over up to ``users`` listeners."""
    from backbeat.recommend.evaluate import evaluate_store, split_of
    from backbeat.sinks.registry import open_reader

    reader = open_reader(str(store))
    t = time.perf_counter()
    found = evaluate_store(reader, split_of(reader, 0.15), max_users=users)
    reader.close()
    scores = {name: getattr(found.model, name) for name in ("ndcg", "recall", "coverage")}
    base = {name: getattr(found.baseline, name) for name in ("ndcg", "recall", "coverage")}
    return {"listeners": len(found.users), "model": scores, "most_played": base,
            "seconds": time.perf_counter() - t}  # fmt: skip


def updates(store: Path, through: int) -> dict[str, Any]:
    """Fold the batches after the model one at a time; seconds and listeners per batch."""
    from backbeat.recommend.service import Recommender, latest_batch
    from backbeat.sinks.registry import open_reader, open_shelf

    reader, shelf = open_reader(str(store)), open_shelf(str(store))
    recommender = Recommender(reader, shelf)
    recommender.refresh(upto=through)
    last = latest_batch(reader)
    seconds, listeners = [], []
    for batch in range(through + 1, last + 1):
        before = recommender.served.updates if recommender.served else 0
        t = time.perf_counter()
        recommender.refresh(upto=batch)
        seconds.append(time.perf_counter() - t)
        listeners.append((recommender.served.updates if recommender.served else 0) - before)
    shelf.close()
    reader.close()
    ordered = sorted(seconds)
    return {
        "batches": len(seconds),
        "median_s": ordered[len(ordered) // 2] if ordered else 0.0,
        "p95_s": ordered[int(len(ordered) * 0.95)] if ordered else 0.0,
        "max_s": ordered[-1] if ordered else 0.0,
        "listeners_per_batch": sum(listeners) / max(len(listeners), 1),
    }


def serve_load(store: Path, users: int, rates: list[int], seconds: int) -> list[dict[str, Any]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "backbeat", "serve", "--store", str(store), "--recommend",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "recommend/model", timeout=5) as answer:
                    if json.loads(answer.read())["ready"]:
                        break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("serve --recommend never loaded the model")
        url = base + "users/{n}/recommendations?limit=10"
        cpu = _cpu(server.pid)
        runs = []
        for rate in rates:
            figures: dict[str, Any] = paced(url, 50, seconds, rate, vary=users)
            used = _cpu(server.pid)
            figures |= {"rate": rate, "server_cpu_ms": (used - cpu) * 1000 / figures["requests"]}
            cpu = used
            runs.append(figures)
        return runs
    finally:
        server.terminate()
        server.wait(timeout=30)


def _cpu(pid: int) -> float:
    """CPU seconds a process has used (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument(
        "--rates", default="1000,300", help="req/s offered in turn (comma-separated)"
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    console = Console(stderr=True)
    results: dict[str, Any] = {"machine": machine(), "users": args.users, "days": args.days}

    def save() -> None:  # after every phase: a long run that fails keeps what it measured
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))

    with tempfile.TemporaryDirectory(prefix="bench-recommend-") as tmp:
        root = Path(tmp)
        console.print(f"simulating {args.users:,} listeners x {args.days:g} days...")
        simulate(root / "history", args.users, START, args.days - 1)
        simulate(root / "live", args.users, START + timedelta(days=args.days - 1), 1)
        console.print("streaming the history into a store...")
        results["history_stream"] = stream(root / "history", root / "store")
        save()
        console.print("training...")
        results["train"] = trained = train(root / "store")
        save()
        console.print("evaluating (a time split of the history)...")
        results["evaluate"] = evaluation(root / "store", args.users)
        save()
        shutil.copytree(root / "store", root / "off")
        shutil.copytree(root / "store", root / "on")
        console.print("streaming the live day, updates off, then on...")
        results["engine_off"] = stream(root / "live", root / "off")
        results["engine_on"] = stream(root / "live", root / "on", "--recommend")
        save()
        console.print("folding the live day batch by batch...")
        results["update"] = updates(root / "on", trained["through_batch"])
        save()
        rates = [int(r) for r in args.rates.split(",")]
        console.print(f"serving {args.rates} req/s, {args.seconds}s each...")
        results["serve"] = serve_load(root / "on", args.users, rates, args.seconds)
    save()
    show(results, console)


def show(r: dict[str, Any], console: Console) -> None:
    t = r["train"]
    table = Table(
        title=f"recommendations · {r['users']:,} listeners x {r['days']:g} days · {r['machine']}"
    )
    table.add_column("what")
    table.add_column("figure", justify="right")
    table.add_row(
        "training (history)",
        f"{t['seconds']:.1f} s for {t['listens']:,} listens, {t['pairs']:,} pairs, "
        f"{t['listeners']:,} x {t['tracks']:,}",
    )
    for phase, s in t["phases"].items():
        table.add_row(f"  {phase}", f"{s:.2f} s")
    e = r["evaluate"]
    table.add_row(
        f"evaluate ({e['listeners']:,} listeners, {e['seconds']:.0f} s)",
        f"NDCG@10 {e['model']['ndcg']:.4f} vs most played {e['most_played']['ndcg']:.4f} "
        f"(x{e['model']['ndcg'] / max(e['most_played']['ndcg'], 1e-9):.1f}); recall@10 "
        f"{e['model']['recall']:.4f} vs {e['most_played']['recall']:.4f}; coverage "
        f"{e['model']['coverage']:.4f} vs {e['most_played']['coverage']:.4f}",
    )
    off, on = r["engine_off"]["events_per_s"], r["engine_on"]["events_per_s"]
    table.add_row("engine, updates off", f"{off:,.0f} ev/s")
    table.add_row("engine, updates on", f"{on:,.0f} ev/s ({on / off:.0%})")
    u = r["update"]
    table.add_row(
        "per-batch update",
        f"median {u['median_s'] * 1000:.0f} ms, p95 {u['p95_s'] * 1000:.0f} ms over "
        f"{u['batches']} batches ({u['listeners_per_batch']:.0f} listeners each)",
    )
    for s in r["serve"]:
        table.add_row(
            f"/api/users/{{id}}/recommendations at {s['rate']:,} req/s",
            f"{s['requests'] / s['seconds']:,.0f} req/s served: p50 {s['p50_ms']:.1f} ms, p99 "
            f"{s['p99_ms']:.1f} ms, failed {s['failed']}, server CPU "
            f"{s['server_cpu_ms']:.2f} ms/request",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
