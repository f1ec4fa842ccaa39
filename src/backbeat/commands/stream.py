"""``backbeat stream``: JSONL files or Kafka -> the engine -> the store and result sinks.

Next: ``backbeat.wiring.pipeline`` (what it assembles), ``common.py``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backbeat.commands.common import (
    OPTS,
    api_token,
    console,
    duration,
    emit,
    err_console,
    guard,
    kafka_settings,
    settings,
    start_from,
    store_option,
    topic,
)
from backbeat.errors import ConfigError
from backbeat.events.schema import Topic
from backbeat.ui.text import plain

if TYPE_CHECKING:
    from backbeat.serve.web_process import WebProcess

RecommendOption = Annotated[
    bool,
    typer.Option(
        "--recommend",
        help="Keep the store's recommendations fresh as batches commit, and serve them with "
        "--serve (backbeat[recommend]; train one with `backbeat recommend train` or "
        "--retrain-every).",
    ),
]
RetrainOption = Annotated[
    str | None,
    typer.Option(
        help="--recommend: train a new model this often (30m, 1h); the first as soon as the "
        "store holds listens."
    ),
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        help="Where results go: a folder (the embedded DuckDB store, default ./backbeat-data) "
        "or a store URL."
    ),
]


def stream(
    input: Annotated[
        list[Path] | None,
        typer.Option(
            "--input",
            "-i",
            help="JSONL files named <topic>.jsonl (listen_events.jsonl...) or folders of them.",
        ),
    ] = None,
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="Read from Kafka at host:port instead of files.")
    ] = None,
    topics: Annotated[
        list[str] | None,
        typer.Option("--topics", help="Kafka: backbeat topics (default all four)."),
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="Kafka: prefix of the cluster's topic names.")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Kafka: join this consumer group (default: assign all).")
    ] = None,
    from_: Annotated[
        str,
        typer.Option(
            "--from",
            help="Kafka: where to start without a stored position: earliest, latest or an ISO "
            "time (the first record stamped at or after it; no zone = UTC).",
        ),
    ] = "earliest",
    until_end: Annotated[
        bool, typer.Option(help="Kafka: stop once every partition is read to its end.")
    ] = False,
    dlq: Annotated[
        bool,
        typer.Option(
            help="Kafka: also write dead letters to <topic>.dlq (off for a second reader of the "
            "same topics, such as a lake's own writer: one copy of each is enough)."
        ),
    ] = True,
    store: StoreOption = None,
    sink: Annotated[
        list[str] | None,
        typer.Option(
            "--sink",
            help="Also write results to these sinks: csv, lake, mongo, kafka-dlq (comma-separated or "
            "repeated; Kafka input adds kafka-dlq).",
        ),
    ] = None,
    csv: Annotated[
        Path | None, typer.Option(help="The csv sink's file (implies --sink csv).")
    ] = None,
    lake: Annotated[
        str | None,
        typer.Option(
            help="The lake sink's folder or s3://bucket/prefix URL (implies --sink lake)."
        ),
    ] = None,
    sink_option: Annotated[
        list[str] | None,
        typer.Option("--sink-option", help="A sink's option: NAME.KEY=VALUE (repeatable)."),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="The engine: embedded, or spark (backbeat[spark]).")
    ] = "embedded",
    master: Annotated[
        str | None,
        typer.Option(help="--engine spark: local[*] (default), spark://HOST:7077, yarn, k8s://..."),
    ] = None,
    spark_conf: Annotated[
        list[str] | None,
        typer.Option(
            "--spark-conf", help="--engine spark: a Spark setting KEY=VALUE (repeatable)."
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(help="--engine spark: the query's checkpoint folder (or URL)."),
    ] = None,
    trigger: Annotated[
        str | None,
        typer.Option(help="--engine spark: a batch interval (10s) or available-now."),
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(
            help="Tracks catalog (Kaggle Spotify Tracks CSV or listen_counts.txt.gz): fills "
            "listens' missing track, genre, mood and duration."
        ),
    ] = None,
    max_events: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many events.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="Stop after this many seconds.")
    ] = None,
    follow: Annotated[
        bool, typer.Option(help="Keep waiting for new lines at the end of input.")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Events per micro-batch at most.")
    ] = None,
    lateness: Annotated[
        float | None, typer.Option(min=0, help="Allowed lateness, seconds (default 120).")
    ] = None,
    serve_web: Annotated[
        bool,
        typer.Option(
            "--serve", help="Also serve the API and dashboard of the store (--host, --port)."
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="--serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="--serve: port.")] = 8000,
    recommend: RecommendOption = False,
    retrain_every: RetrainOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Serve Prometheus metrics (events in, dead letters by reason, consumer lag, "
            "batch latency, watermark delay, sink errors) at /metrics on this port "
            "(BACKBEAT_METRICS_PORT).",
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option(help="--metrics-port: address (default 127.0.0.1; BACKBEAT_METRICS_HOST)."),
    ] = None,
) -> None:
    """Stream JSONL files or Kafka into the store, exactly once (resumes where it stopped)."""
    from backbeat import wiring
    from backbeat.engine.base import EngineSettings, RunReport
    from backbeat.observe.exporter import exporting
    from backbeat.observe.metrics import StreamMetrics
    from backbeat.replay.catalog import lookup_file
    from backbeat.serve.hub import CommitHub
    from backbeat.sinks.base import BatchStats
    from backbeat.transport.base import Source
    from backbeat.ui.progress import StatusLine

    def body() -> None:
        current = settings()
        if (input is None) == (bootstrap_servers is None):
            raise ConfigError("give either --input (JSONL files) or --bootstrap-servers (Kafka)")
        if serve_web and group is not None:
            raise ConfigError(
                "--serve needs the store to itself; with --group, run `backbeat serve --store` "
                "next to the members"
            )
        kafka = None
        names = list(sink or [])
        if bootstrap_servers is not None:
            kafka = kafka_settings(bootstrap_servers, topic_prefix)
            if dlq:
                names.append("kafka-dlq")  # Kafka input: dead letters also to <topic>.dlq
        specs = wiring.sink_specs(
            list(dict.fromkeys(names)),
            {"csv": None if csv is None else str(csv), "lake": lake},
            sink_option or [],
            kafka,
        )
        plan = wiring.RunPlan(
            store=store_option(store) or current.store,
            sinks=specs,
            engine=engine,
            settings=EngineSettings(
                lateness_ms=int(lateness * 1000) if lateness is not None else current.lateness_ms,
                max_batch_events=batch_size or current.max_batch_events,
                catalog=lookup_file(catalog) if catalog is not None else None,
                options=engine_options(engine, master, spark_conf or [], checkpoint, trigger),
            ),
            shared=group is not None,  # members of a group share one store
        )
        source: Source
        if kafka is not None:
            chosen = [kafka.topic(topic(t).value) for t in topics or list(Topic)]
            source = wiring.kafka_source(
                kafka, chosen, group=group, start=start_from(from_), stop_at_end=until_end
            )
        else:
            assert input is not None
            source = wiring.jsonl_source(input, follow)
        status = StatusLine(console, enabled=not OPTS.json)
        hubs: list[CommitHub] = []
        watch = metrics_port if metrics_port is not None else current.metrics_port
        metrics = None if watch is None else StreamMetrics(source.lag)

        def on_batch(stats: BatchStats, report: RunReport) -> None:
            for hub in hubs:
                hub.publish(stats.batch_id)
            if metrics is not None:
                metrics.committed(stats)
            status.on_batch(stats, report)

        every = None if retrain_every is None else duration(retrain_every, "--retrain-every")
        if every is not None and not recommend:
            raise ConfigError("--retrain-every: only with --recommend")
        on_error = None if metrics is None else metrics.failed
        with (
            wiring.assemble(source, plan, on_batch, on_error=on_error) as run,
            contextlib.ExitStack() as extras,
        ):
            if metrics is not None and watch is not None:
                where = metrics_host or current.metrics_host
                url = extras.enter_context(exporting(metrics.registry, where, watch))
                err_console.print(plain(f"metrics: {url}"), soft_wrap=True)
            if run.engine.ui_url is not None:
                err_console.print(plain(f"Spark UI: {run.engine.ui_url}"), soft_wrap=True)
            reader = run.reader()
            if recommend:
                reader = extras.enter_context(
                    wiring.recommending(reader, plan.store, retrain_every=every, catalog=catalog)
                )
            web = None
            if serve_web:
                web, hub = wiring.web_server(reader, host, port, api_token(current))
                hubs.append(hub)
                start_web(web)
            try:
                with status:
                    report = run.engine.run(max_events=max_events, timeout=timeout)
            finally:
                if web is not None:
                    web.stop()
        emit(
            {
                "batches": report.batches,
                "events_in": report.events_in,
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "late": report.late,
                "dead": report.dead,
                "seconds": round(report.seconds, 3),
                "stopped_by": report.stopped_by,
            },
            f"{report.events_in:,} events in {report.seconds:.1f}s "
            f"({report.events_in / max(report.seconds, 1e-9):,.0f}/s): accepted {report.accepted:,}, "
            f"duplicates {report.duplicates:,}, late {report.late:,}, dead letters {report.dead:,} "
            f"[{report.stopped_by}]",
        )

    guard(body)


def start_web(web: WebProcess) -> None:
    """Start the web process, say where it is, and let it go first when the CPU is busy."""
    from backbeat.serve.web_process import yield_to_web

    web.start()
    err_console.print(plain(f"dashboard: {web.url}"), soft_wrap=True)
    yield_to_web()


def engine_options(
    engine: str, master: str | None, conf: list[str], checkpoint: str | None, trigger: str | None
) -> dict[str, str]:
    """The Spark engine's flags as engine options (refused, in one line, for another engine).

    Raises:
        ConfigError: a Spark flag without ``--engine spark``, or a malformed ``--spark-conf``.
    """
    given = {"master": master, "checkpoint": checkpoint, "trigger": trigger}
    options = {k: v for k, v in given.items() if v is not None}
    for entry in conf:
        key, equals, value = entry.partition("=")
        if not (equals and key.strip()):
            raise ConfigError(f"--spark-conf {entry!r}: write it as KEY=VALUE")
        options[f"conf.{key.strip()}"] = value
    if options and engine != "spark":
        flags = ", ".join(f"--{k.split('.')[0].replace('conf', 'spark-conf')}" for k in options)
        raise ConfigError(f"{flags}: only with --engine spark")
    if trigger is not None and trigger != "available-now" and not trigger[:1].isdigit():
        raise ConfigError(f"--trigger {trigger!r}: give an interval such as 10s, or available-now")
    return options
