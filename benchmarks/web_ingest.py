"""The server side of ``bench_web.py``: the demo's ingest and web app, with stamped probes.

Runs what ``backbeat demo`` runs (the live simulator at ``--speed`` -> engine -> DuckDB store,
the FastAPI app on a uvicorn thread, each commit published to the live streams), without the
terminal view, and adds one *probe* listen event to every simulator step as the step is
released to the engine: a copy of one of the step's listens whose artist is
``backbeat-probe-<n>`` and whose song is ``sent <wall clock ns>``, the moment the simulated
service emitted the step (its end on the scaled clock; a step polled late counts the wait). An SSE client filtering on
the artist sees each probe once its batch is committed, and the difference of clocks is the
event -> screen latency. Prints ``url <URL>`` on stdout once it serves; SIGTERM stops it
after committing the batch in flight.

    uv run python benchmarks/web_ingest.py --store DIR [--users 35000] [--speed 300]
        [--web process|thread]

Next: ``bench_web.py`` (the benchmark that starts this), ``web_clients.py``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from backbeat.events.schema import Topic
from backbeat.simulate.simulator import SimBatch

PROBE_ARTIST = "backbeat-probe"
PROBE_SESSION_BASE = 2**61  # far above simulated session ids: never a duplicate of one


class ProbeTap:
    """Adds one stamped probe listen to each released simulator step (see the module doc)."""

    def __init__(self, speed: float) -> None:
        self._speed = speed
        self._numbers = itertools.count()
        self._origin: tuple[int, int] | None = None  # (wall ns, event ms) at the start

    def __call__(self, step: SimBatch) -> SimBatch:
        now = time.time_ns()
        if self._origin is None:  # the first step is released one step after the start
            self._origin = (
                now - round((step.end_ms - step.start_ms) / self._speed * 1e6),
                step.start_ms,
            )
        listens: pa.Table | None = step.tables.get(Topic.LISTEN)
        if listens is None or listens.num_rows == 0:
            return step
        wall0, ms0 = self._origin
        # The simulated service emits the step when the scaled clock reaches its end; if the
        # engine polls later than that (a backlog), the wait counts in the latency too.
        emitted = min(now, wall0 + round((step.end_ms - ms0) / self._speed * 1e6))
        n = next(self._numbers)
        probe = _with(
            listens.slice(0, 1),
            eventId=f"probe-{n}",
            sessionId=PROBE_SESSION_BASE + n,
            itemInSession=0,
            artist=f"{PROBE_ARTIST}-{n}",
            song=f"sent {emitted}",
        )
        tables = dict(step.tables)
        tables[Topic.LISTEN] = pa.concat_tables([listens, probe])
        return replace(step, tables=tables)


def _with(row: pa.Table, **values: object) -> pa.Table:
    """``row`` (one row) with some columns replaced, keeping their types."""
    for name, value in values.items():
        i = row.schema.get_field_index(name)
        row = row.set_column(i, row.schema.field(i), pa.array([value], row.schema.field(i).type))
    return row


def serve(store: Path, users: int, speed: float, seed: int, web_in: str) -> None:
    """Ingest with probes into a fresh store at ``store`` and serve it until SIGTERM; the web
    server runs in a child process (``web_in="process"``, as the demo does) or in a thread."""
    from backbeat import wiring
    from backbeat.engine.base import EngineSettings, RunReport
    from backbeat.engine.pipeline import Pipeline
    from backbeat.serve.app import WebServer, create_app
    from backbeat.serve.hub import CommitHub, latest_batch
    from backbeat.serve.web_process import WebProcess, process_server, yield_to_web
    from backbeat.sinks.base import BatchStats
    from backbeat.sinks.duckdb.store import DuckDBStore

    db = DuckDBStore.at(str(store))
    db.reset()
    source = wiring.live_source(users=users, seed=seed, speed=speed, tap=ProbeTap(speed))
    web: WebServer | WebProcess
    hub: CommitHub
    reader = db.reader()
    if web_in == "process":
        web, hub = process_server(reader, "127.0.0.1", 0, None)
    else:
        hub = CommitHub(latest_batch(reader))
        web = WebServer(create_app(reader, hub), "127.0.0.1", 0)

    def on_batch(stats: BatchStats, report: RunReport) -> None:
        hub.publish(stats.batch_id)

    pipeline = Pipeline(source, db, settings=EngineSettings(max_future_ms=None), on_batch=on_batch)
    try:
        web.start()
        if web_in == "process":
            yield_to_web()  # as the demo does
        print(f"url {web.url}", flush=True)
        pipeline.run()
    finally:
        web.stop()
        pipeline.close()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--users", type=int, default=35_000)
    parser.add_argument("--speed", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--web", choices=("process", "thread"), default="process")
    args = parser.parse_args()
    serve(args.store, args.users, args.speed, args.seed, args.web)
    sys.exit(0)


if __name__ == "__main__":
    main()
