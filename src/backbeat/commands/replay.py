"""``backbeat replay``: real listening histories (Spotify exports, the Kaggle CSV, eventsim's
own output) into a store (with the dashboard, ``--serve``), JSONL files or Kafka.

Next: ``backbeat.wiring.replay`` (loading and writing), ``docs/replay.md`` (the mappings).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backbeat.commands.common import (
    OPTS,
    api_token,
    console,
    emit,
    guard,
    kafka_settings,
    parse_time,
    settings,
    store_option,
)
from backbeat.commands.stream import StoreOption, start_web
from backbeat.errors import ConfigError

if TYPE_CHECKING:
    from backbeat.engine.base import RunReport
    from backbeat.serve.hub import CommitHub
    from backbeat.sinks.base import BatchStats


def replay(
    paths: Annotated[
        list[Path], typer.Argument(help="Export files, folders or zips (my_spotify_data.zip).")
    ],
    format: Annotated[
        str | None,
        typer.Option(help="Read every file as: extended, account, kaggle or eventsim."),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="The listener (default: the export's, or a hash of it).")
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(help="Tracks catalog: Kaggle Spotify Tracks CSV or listen_counts.txt.gz."),
    ] = None,
    session_gap: Annotated[
        float, typer.Option(min=1, help="Minutes of inactivity that end a session.")
    ] = 30.0,
    out: Annotated[
        Path | None, typer.Option(help="Write <topic>.jsonl files here instead of a store.")
    ] = None,
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="Produce to Kafka at host:port instead of a store.")
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="Kafka: prefix of the cluster's topic names.")
    ] = None,
    store: StoreOption = None,
    speed: Annotated[
        float | None, typer.Option(min=0.001, help="Replay at this many times real time.")
    ] = None,
    shift_to: Annotated[
        str | None,
        typer.Option(help="Move the history so it starts now (`now`) or at an ISO time."),
    ] = None,
    serve_web: Annotated[
        bool, typer.Option("--serve", help="Serve the dashboard of the store (--host, --port).")
    ] = False,
    host: Annotated[str, typer.Option(help="--serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="--serve: port.")] = 8000,
) -> None:
    """Replay listening histories in event-time order; a second import adds only what is new."""
    import time
    from datetime import UTC, datetime

    from backbeat import wiring
    from backbeat.engine.base import EngineSettings
    from backbeat.replay.catalog import lookup_file
    from backbeat.replay.formats import Format
    from backbeat.replay.source import ReplaySource
    from backbeat.ui.progress import StatusLine
    from backbeat.wiring import replay as replaying

    def body() -> None:
        current = settings()
        elsewhere = [
            f for f, v in (("--out", out), ("--bootstrap-servers", bootstrap_servers)) if v
        ]
        if len(elsewhere) > 1 or (elsewhere and (store is not None or serve_web)):
            raise ConfigError(
                "give one destination: --out (JSONL files), --bootstrap-servers (Kafka) or "
                "--store / --serve (a store)"
            )
        if elsewhere and (speed is not None or shift_to is not None):
            raise ConfigError(
                f"--speed and --shift-to pace a replay into a store, not {elsewhere[0]}"
            )
        forced = None
        if format is not None:
            try:
                forced = Format(format)
            except ValueError:
                raise ConfigError(
                    f"--format {format!r}: choose one of {', '.join(f.value for f in Format)}"
                ) from None
        loaded = replaying.load(
            paths, forced=forced, user=user, catalog=lookup_file(catalog) if catalog else None,
            gap_ms=int(session_gap * 60_000),
        )  # fmt: skip
        summary = {
            "files": loaded.files,
            "events": loaded.events,
            "left_out": dict(loaded.left_out),
            "passed_over": dict(loaded.passed_over),
        }
        if bootstrap_servers is not None:
            kafka = kafka_settings(bootstrap_servers, topic_prefix)
            sent = replaying.to_kafka(loaded, kafka, progress=not OPTS.json)
            emit(
                summary | {"bootstrap_servers": kafka.bootstrap_servers, "sent": sent},
                f"sent {sum(sent.values()):,} new events to {kafka.bootstrap_servers} from "
                f"{loaded.files} file(s) ({_apart(summary)})",
            )
            return
        if out is not None:
            written = replaying.to_jsonl(loaded, out)
            emit(
                summary | {"out": str(out), "written": written},
                f"wrote {sum(written.values()):,} new events to {out}/ from {loaded.files} "
                f"file(s) ({_apart(summary)})",
            )
            return
        shift = 0
        if shift_to is not None:
            first = min((int(s.times[0]) for s in loaded.streams if s.table.num_rows), default=0)
            start = datetime.now(UTC) if shift_to == "now" else parse_time(shift_to, "--shift-to")
            assert start is not None
            shift = int(start.timestamp() * 1000) - first
        plan = wiring.RunPlan(
            store=store_option(store) or current.store,
            settings=EngineSettings(lateness_ms=current.lateness_ms, max_future_ms=None),
        )
        status = StatusLine(
            console, enabled=not OPTS.json, total=loaded.events, description="replaying"
        )
        hubs: list[CommitHub] = []

        def on_batch(stats: BatchStats, report: RunReport) -> None:
            for hub in hubs:
                hub.publish(stats.batch_id)
            status.advance(report.events_in, f"{report.events_in:,} of {loaded.events:,} events")

        source = ReplaySource(loaded.streams, speed=speed, shift_ms=shift)
        started = time.monotonic()
        with wiring.assemble(source, plan, on_batch) as run:
            web = None
            if serve_web:
                web, hub = wiring.web_server(run.reader(), host, port, api_token(current))
                hubs.append(hub)
                start_web(web)
            try:
                with status:
                    report = run.engine.run()
                if web is not None:
                    console.print("replayed: the dashboard stays up until Ctrl-C", highlight=False)
                    _serve_until_interrupted()
            finally:
                if web is not None:
                    web.stop()
        emit(
            summary | {"accepted": report.accepted, "duplicates": report.duplicates,
                       "dead": report.dead, "late": report.late,
                       "seconds": round(time.monotonic() - started, 3)},
            f"replayed {report.events_in:,} new events from {loaded.files} file(s) into "
            f"{plan.store}: accepted {report.accepted:,}, dead letters {report.dead:,} "
            f"({_apart(summary)})",
        )  # fmt: skip

    guard(body)


def _apart(summary: dict[str, object]) -> str:
    left = summary["left_out"]
    over = summary["passed_over"]
    assert isinstance(left, dict)
    assert isinstance(over, dict)
    parts = [f"{n:,} {reason}" for reason, n in sorted(left.items())]
    parts += [f"{n:,} file(s) passed over: {reason}" for reason, n in sorted(over.items())]
    return "left out: " + ", ".join(parts) if parts else "nothing left out"


def _serve_until_interrupted() -> None:
    import signal
    import threading

    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
