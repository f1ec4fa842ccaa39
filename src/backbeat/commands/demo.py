"""``backbeat demo``: simulator -> engine -> store, with the live terminal view and the
dashboard; in one process, or through a Kafka broker with ``--bootstrap-servers``.

Next: ``backbeat.wiring`` (the live source, the Kafka demo), ``backbeat.ui.live``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from backbeat.commands.common import (
    OPTS,
    IncidentOption,
    api_token,
    console,
    emit,
    err_console,
    guard,
    kafka_settings,
    settings,
    store_option,
)
from backbeat.commands.common import duration as duration_of
from backbeat.commands.simulate import CatalogFile
from backbeat.commands.stream import StoreOption, start_web
from backbeat.errors import ConfigError, MissingExtraError
from backbeat.events.schema import Topic
from backbeat.ui.text import plain

if TYPE_CHECKING:
    from backbeat.engine.base import OnBatch, RunReport
    from backbeat.sinks.base import BatchStats, Store
    from backbeat.sinks.queries import Reader


def demo(
    duration: Annotated[
        float | None, typer.Option(min=1, help="Seconds to run (default: until Ctrl-C).")
    ] = None,
    users: Annotated[int, typer.Option(min=1, help="Simulated users.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    speed: Annotated[
        float, typer.Option(min=1, help="Event-time seconds per wall-clock second.")
    ] = 300.0,
    store: StoreOption = None,
    catalog: CatalogFile = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Run the producer and the stream through Kafka at host:port."),
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="Kafka: prefix of the cluster's topic names.")
    ] = None,
    host: Annotated[str, typer.Option(help="Dashboard: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Dashboard: port.")] = 8000,
    no_web: Annotated[
        bool, typer.Option("--no-web", help="Terminal view only: no dashboard and API.")
    ] = False,
    recommend: Annotated[
        bool,
        typer.Option(
            help="Recommendations on the dashboard: a model trained every --retrain-every, "
            "updated as batches commit (needs backbeat[recommend])."
        ),
    ] = True,
    retrain_every: Annotated[str, typer.Option(help="--recommend: train this often.")] = "2m",
    incident: IncidentOption = None,
) -> None:
    """Simulator -> engine -> store with a live terminal view and the web dashboard: in one
    process, or through a Kafka broker (producer thread -> topics -> engine) with
    --bootstrap-servers. The demo's store (default ./backbeat-data/demo) starts empty."""
    from backbeat import wiring
    from backbeat.engine.base import EngineSettings
    from backbeat.simulate.synthetic import synthetic_catalog
    from backbeat.sinks.base import SinkSpec
    from backbeat.transport.base import Source
    from backbeat.ui.live import LiveView

    def body() -> None:
        current = settings()
        incidents = tuple(incident or ())
        where = store_option(store) or current.store.rstrip("/") + "/demo"
        kafka = (
            None if bootstrap_servers is None else kafka_settings(bootstrap_servers, topic_prefix)
        )
        ours = ("simulator:",) + (
            () if kafka is None else tuple(f"kafka:{kafka.topic(t.value)}:" for t in Topic)
        )

        def empty(db: Store) -> None:
            if any(not p.startswith(ours) for p in db.load_state().partitions):
                raise ConfigError(
                    f"{where!r} holds results of `backbeat stream`; the demo starts from an "
                    "empty store: give --store another folder"
                )
            db.reset()  # a demo always starts from scratch

        plan = wiring.RunPlan(
            store=where,
            sinks=() if kafka is None else (SinkSpec("kafka-dlq", kafka=kafka),),
            settings=EngineSettings(lateness_ms=current.lateness_ms, max_future_ms=None),
        )
        through = (
            None
            if kafka is None
            else wiring.KafkaDemo(
                kafka, users=users, seed=seed, speed=speed, catalog=catalog, incidents=incidents
            )
        )
        source: Source = (
            through.source
            if through
            else wiring.live_source(
                users=users, seed=seed, speed=speed, catalog=catalog, incidents=incidents
            )
        )
        listeners: list[OnBatch] = []

        def on_batch(stats: BatchStats, report: RunReport) -> None:
            for listener in listeners:
                listener(stats, report)

        delivered = None
        every = duration_of(retrain_every, "--retrain-every")
        # the simulator's tracks, with their sound: new tracks and newcomers get "similar sound"
        tracks = catalog if catalog is not None else synthetic_catalog(seed=seed)

        def recommendations(reader: Reader) -> Reader:
            try:
                return extras.enter_context(
                    wiring.recommending(reader, where, retrain_every=every, catalog=tracks)
                )
            except MissingExtraError as exc:
                err_console.print(plain(f"recommendations off: {exc}"))
                return reader

        with (
            wiring.assemble(source, plan, on_batch, prepare=empty) as run,
            contextlib.ExitStack() as extras,
        ):
            via = f" · via Kafka {kafka.bootstrap_servers}" if kafka else ""
            view = LiveView(
                run.reader(),
                err_console if OPTS.json else console,  # --json: stdout carries the summary
                title=f"backbeat demo · {users:,} users · ×{speed:g} event time{via}",
            )
            web = None
            if not no_web:
                reader = recommendations(run.reader()) if recommend else run.reader()
                web, hub = wiring.web_server(reader, host, port, api_token(current))
                listeners.append(lambda stats, report: hub.publish(stats.batch_id))
            listeners.append(view.on_batch)
            try:
                if web is not None:
                    start_web(web)
                if through is not None:
                    through.start(on_error=run.engine.stop)
                with view:
                    report = run.engine.run(timeout=duration)
            finally:
                try:
                    delivered = through.stop() if through else None  # flushes the producer
                finally:
                    if web is not None:
                        web.stop()
        payload: dict[str, Any] = {
            "events_in": report.events_in,
            "accepted": report.accepted,
            "seconds": round(report.seconds, 3),
            "stopped_by": report.stopped_by,
            "store": where,
        }
        human = f"demo done: {report.events_in:,} events in {report.seconds:.0f}s"
        if delivered is not None:
            payload |= {"delivered": delivered.delivered, "failed": delivered.failed}
            human += f" ({delivered.delivered:,} delivered to Kafka, {delivered.failed:,} failed)"
        emit(
            payload, f"{human}; results in {where}/ (try: backbeat query top-songs --store {where})"
        )

    guard(body)
