"""The Kafka commands: ``topics create|list|describe|delete`` and ``produce``
(``stream --bootstrap-servers`` lives with ``stream``).

Thin like the rest of the CLI: parse flags, build :class:`KafkaSettings` (flags >
``BACKBEAT_KAFKA_*`` > defaults), call one library function, render.

Next: ``backbeat.transport.kafka.admin`` and ``backbeat.wiring.produce``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from backbeat.commands.common import (
    OPTS,
    IncidentOption,
    emit,
    guard,
    kafka_settings,
    simulator_settings,
    topic,
)
from backbeat.commands.simulate import CatalogFile, Config, Seed, Users
from backbeat.commands.usage import BackbeatGroup
from backbeat.ui.text import visible

if TYPE_CHECKING:
    from backbeat.transport.kafka.settings import KafkaSettings

topics_app = typer.Typer(
    cls=BackbeatGroup, help="Create, list, describe or delete backbeat's Kafka topics."
)

Servers = Annotated[
    str | None,
    typer.Option(help="Kafka host:port[,...] (default $BACKBEAT_KAFKA_BOOTSTRAP_SERVERS)."),
]
Prefix = Annotated[str | None, typer.Option(help="Prefix of the cluster's topic names.")]
Names = Annotated[
    list[str] | None,
    typer.Option("--topic", help="Cluster topic name(s) (default: backbeat's four + .dlq)."),
]


def _names(
    bootstrap_servers: str | None, topic_prefix: str | None, topic: list[str] | None
) -> tuple[KafkaSettings, list[str]]:
    from backbeat.transport.kafka.admin import backbeat_topics

    kafka = kafka_settings(bootstrap_servers, topic_prefix)
    return kafka, topic or backbeat_topics(kafka)


@topics_app.command("create")
def topics_create(
    bootstrap_servers: Servers = None,
    topic_prefix: Prefix = None,
    topic: Names = None,
    partitions: Annotated[int, typer.Option(min=1, help="Partitions per topic.")] = 6,
    replication_factor: Annotated[int, typer.Option(min=1, help="Replicas per partition.")] = 1,
    retention_hours: Annotated[
        float | None, typer.Option(min=0, help="Retention (default: the broker's).")
    ] = None,
) -> None:
    """Create the topics (idempotent: existing ones are left as they are)."""
    from backbeat.transport.kafka.admin import TopicSpec, create_topics

    def body() -> None:
        kafka, names = _names(bootstrap_servers, topic_prefix, topic)
        retention = None if retention_hours is None else int(retention_hours * 3_600_000)
        result = create_topics(kafka, names, TopicSpec(partitions, replication_factor, retention))
        emit(result, [f"{n}: {state}" for n, state in result.items()])

    guard(body)


@topics_app.command("list")
def topics_list(bootstrap_servers: Servers = None) -> None:
    """List the cluster's topics with their partition counts."""
    from backbeat.transport.kafka.admin import list_topics

    def body() -> None:
        result = list_topics(kafka_settings(bootstrap_servers, None))
        emit(result, [f"{n}  ({p} partitions)" for n, p in result.items()] or "no topics")

    guard(body)


@topics_app.command("describe")
def topics_describe(
    bootstrap_servers: Servers = None, topic_prefix: Prefix = None, topic: Names = None
) -> None:
    """Partitions, replication factor and non-default configuration of the topics."""
    from backbeat.transport.kafka.admin import describe_topics

    def body() -> None:
        kafka, names = _names(bootstrap_servers, topic_prefix, topic)
        infos = describe_topics(kafka, names)
        emit(
            {"topics": [asdict(i) for i in infos]},
            [
                f"{i.name}: {i.partitions} partitions × {i.replication_factor} replicas {i.config}"
                for i in infos
            ],
        )

    guard(body)


@topics_app.command("delete")
def topics_delete(
    bootstrap_servers: Servers = None,
    topic_prefix: Prefix = None,
    topic: Names = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the topics (and the events in them)."""
    from backbeat.transport.kafka.admin import delete_topics

    def body() -> None:
        kafka, names = _names(bootstrap_servers, topic_prefix, topic)
        if not yes and not typer.confirm(f"delete {visible(', '.join(names))}?"):
            raise typer.Abort()
        result = delete_topics(kafka, names)
        emit(result, [f"{n}: {state}" for n, state in result.items()])

    guard(body)


def produce(
    bootstrap_servers: Servers = None,
    topic_prefix: Prefix = None,
    topics: Annotated[
        list[str] | None,
        typer.Option("--topic", help="backbeat topic(s) to produce (default: all four)."),
    ] = None,
    rate: Annotated[float | None, typer.Option(min=1, help="Events/s at most.")] = None,
    total: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    users: Users = 10_000,
    seed: Seed = None,
    start: Annotated[str | None, typer.Option(help="Event-time start, ISO.")] = None,
    end: Annotated[
        str | None, typer.Option(help="Event-time end, ISO (default start + 1 h).")
    ] = None,
    config: Config = None,
    catalog: CatalogFile = None,
    incident: IncidentOption = None,
) -> None:
    """Simulate a music service into Kafka (idempotent producer, acks=all, lz4); creates the
    topics it writes when missing."""
    from backbeat import wiring

    def body() -> None:
        kafka = kafka_settings(bootstrap_servers, topic_prefix)
        run = simulator_settings(users, seed, start, end, config, catalog, incident)
        chosen = {topic(t) for t in topics} if topics else None
        report = wiring.produce_to_kafka(
            run, kafka, chosen, rate=rate, total=total, progress=not OPTS.json
        )
        emit(
            {
                "produced": report.produced,
                "delivered": report.delivered,
                "failed": report.failed,
                "reasons": dict(report.reasons),
            },
            f"delivered {report.delivered:,} of {report.produced:,} events to "
            f"{kafka.bootstrap_servers} ({report.failed:,} delivery errors)",
        )

    guard(body)
