"""Topic admin against a real broker: idempotent create, list, describe, delete (+ the CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from backbeat.transport.kafka.admin import (
    TopicSpec,
    backbeat_topics,
    create_topics,
    delete_topics,
    describe_topics,
    list_topics,
)
from backbeat.transport.kafka.settings import KafkaSettings

pytestmark = pytest.mark.integration

CLI = (sys.executable, "-m", "backbeat", "--json")


def test_create_is_idempotent_and_topics_can_be_described_and_deleted(
    kafka: KafkaSettings,
) -> None:
    names = backbeat_topics(kafka)
    assert len(names) == 8
    assert sum(n.endswith(".dlq") for n in names) == 4
    spec = TopicSpec(partitions=2, retention_ms=3_600_000)
    assert create_topics(kafka, names, spec) == dict.fromkeys(names, "created")
    assert create_topics(kafka, names, spec) == dict.fromkeys(names, "exists")
    listed = list_topics(kafka)
    assert {n: listed[n] for n in names} == dict.fromkeys(names, 2)
    infos = describe_topics(kafka, names[:1])
    assert (infos[0].name, infos[0].partitions, infos[0].replication_factor) == (names[0], 2, 1)
    assert delete_topics(kafka, names) == dict.fromkeys(names, "deleted")
    assert not set(names) & set(list_topics(kafka))


def test_cli_topics_create_twice_then_list(kafka: KafkaSettings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    args = ["--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix]
    run = lambda *a: subprocess.run(  # noqa: E731
        [*CLI, "topics", *a], capture_output=True, env=env, timeout=60, check=True
    )
    first = json.loads(run("create", *args, "--partitions", "3").stdout)
    second = json.loads(run("create", *args, "--partitions", "3").stdout)
    assert set(first.values()) == {"created"}
    assert set(second.values()) == {"exists"}
    assert first.keys() == second.keys() == set(backbeat_topics(kafka))
    listed = json.loads(run("list", "--bootstrap-servers", kafka.bootstrap_servers).stdout)
    assert all(listed[name] == 3 for name in first)


def test_unreachable_broker_is_one_line_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    done = subprocess.run(
        [*CLI, "topics", "list", "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True, env={**env, "BACKBEAT_KAFKA_EXTRA": '{"log_level": "0"}', "BACKBEAT_KAFKA_REQUEST_TIMEOUT_S": "2"},
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert b"did not answer" in done.stderr
    assert b"Traceback" not in done.stderr
