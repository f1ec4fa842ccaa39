"""Topic administration: create, list, describe and delete backbeat's topics on a cluster.

backbeat's topics are the four event topics and one dead-letter topic ``<topic>.dlq`` each,
all named through :meth:`KafkaSettings.topic` (so a prefix applies). Creation is idempotent: a
topic that already exists is reported as such, not as an error. Every call waits for the
cluster with a timeout and turns a failure into a one-line :class:`~backbeat.errors.SourceError`.

Next: ``producer.py`` (writes to these topics), ``backbeat.cli`` (``backbeat topics ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic

from backbeat.errors import SourceError
from backbeat.events.schema import Topic
from backbeat.transport.kafka.settings import DLQ_SUFFIX, KafkaSettings


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How to create a topic: partitions, replication factor, retention (None = broker's),
    and whether only each key's latest record is kept (``compact``)."""

    partitions: int = 6
    replication_factor: int = 1
    retention_ms: int | None = None
    compact: bool = False


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic as the cluster describes it."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


def backbeat_topics(settings: KafkaSettings, dlq: bool = True) -> list[str]:
    """The cluster names of the four event topics (and their dead-letter topics)."""
    names = [settings.topic(t.value) for t in Topic]
    return names + [n + DLQ_SUFFIX for n in names] if dlq else names


def _admin(settings: KafkaSettings) -> AdminClient:
    conf: dict[str, str | int | float | bool] = {**settings.to_librdkafka()}
    return AdminClient(conf)


def create_topics(
    settings: KafkaSettings, names: Sequence[str], spec: TopicSpec | None = None
) -> dict[str, str]:
    """Create ``names``; returns ``{name: "created" | "exists"}``.

    Raises:
        SourceError: the cluster cannot be reached or refused a topic.
    """
    spec = spec or TopicSpec()
    config = {} if spec.retention_ms is None else {"retention.ms": str(spec.retention_ms)}
    if spec.compact:
        config["cleanup.policy"] = "compact"
    new = [
        NewTopic(n, num_partitions=spec.partitions, replication_factor=spec.replication_factor,
                 config=config)
        for n in names
    ]  # fmt: skip
    admin = _admin(settings)  # must outlive the futures
    futures = admin.create_topics(new, request_timeout=settings.request_timeout_s)
    return _outcomes(
        futures, settings, "create", ("created", "exists"), KafkaError.TOPIC_ALREADY_EXISTS
    )


def list_topics(settings: KafkaSettings) -> dict[str, int]:
    """Every topic on the cluster (internal ones hidden) with its partition count."""
    try:
        meta = _admin(settings).list_topics(timeout=settings.request_timeout_s)
    except KafkaException:
        raise _unreachable(settings) from None
    return {
        name: len(t.partitions)
        for name, t in sorted(meta.topics.items())
        if not name.startswith("__")
    }


def describe_topics(settings: KafkaSettings, names: Sequence[str]) -> list[TopicInfo]:
    """Partitions, replication and configuration (non-default keys) of ``names``.

    Raises:
        SourceError: a topic does not exist or the cluster cannot be reached.
    """
    admin = _admin(settings)
    try:
        meta = admin.list_topics(timeout=settings.request_timeout_s)
    except KafkaException:
        raise _unreachable(settings) from None
    missing = [n for n in names if n not in meta.topics]
    if missing:
        raise SourceError(
            f"no such topic: {', '.join(missing)} (create it: backbeat topics create)"
        )
    futures = admin.describe_configs(
        [ConfigResource("topic", n) for n in names], request_timeout=settings.request_timeout_s
    )
    configs: dict[str, dict[str, str]] = {}
    for resource, future in futures.items():
        try:
            entries = future.result(timeout=settings.request_timeout_s)
        except KafkaException as exc:
            raise SourceError(f"cannot describe {resource.name!r}: {exc.args[0].str()}") from None
        configs[resource.name] = {
            k: str(v.value) for k, v in entries.items() if not v.is_default and v.value is not None
        }
    infos = []
    for n in names:
        parts = meta.topics[n].partitions
        replicas = max((len(p.replicas) for p in parts.values()), default=0)
        infos.append(TopicInfo(n, len(parts), replicas, configs.get(n, {})))
    return infos


def delete_topics(settings: KafkaSettings, names: Sequence[str]) -> dict[str, str]:
    """Delete ``names``; returns ``{name: "deleted" | "missing"}``.

    Raises:
        SourceError: the cluster cannot be reached or refused.
    """
    admin = _admin(settings)  # must outlive the futures
    futures = admin.delete_topics(list(names), request_timeout=settings.request_timeout_s)
    return _outcomes(
        futures, settings, "delete", ("deleted", "missing"), KafkaError.UNKNOWN_TOPIC_OR_PART
    )


def _outcomes(
    futures: Mapping[str, Future[None]],
    settings: KafkaSettings,
    verb: str,
    labels: tuple[str, str],
    benign: int,
) -> dict[str, str]:
    """Wait for per-topic admin futures: ``labels[0]`` when done, ``labels[1]`` when the
    broker answered with the ``benign`` error code (already so), else a SourceError."""
    result: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=settings.request_timeout_s)
            result[name] = labels[0]
        except KafkaException as exc:
            if exc.args[0].code() != benign:
                raise SourceError(f"cannot {verb} topic {name!r}: {exc.args[0].str()}") from None
            result[name] = labels[1]
        except TimeoutError:
            raise _unreachable(settings) from None
    return result


def _unreachable(settings: KafkaSettings) -> SourceError:
    return SourceError(
        f"Kafka at {settings.bootstrap_servers!r} did not answer within {settings.request_timeout_s:g}s: "
        "check --bootstrap-servers and that the broker is running"
    )
