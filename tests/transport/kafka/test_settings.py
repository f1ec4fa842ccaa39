"""KafkaSettings: librdkafka keys, pass-through, and secrets that never show."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from backbeat.transport.kafka.settings import KafkaSettings
from backbeat.transport.kafka.source import parse_partition_name, partition_name


def test_librdkafka_config_has_security_and_extra_keys() -> None:
    s = KafkaSettings(
        bootstrap_servers="b1:9092,b2:9092",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password=SecretStr("hunter2"),
        extra={"socket.keepalive.enable": "true", "client.id": "mine"},
    )
    conf = s.to_librdkafka()
    assert conf["bootstrap.servers"] == "b1:9092,b2:9092"
    assert conf["sasl.password"] == "hunter2"
    assert conf["socket.keepalive.enable"] == "true"
    assert conf["client.id"] == "mine"  # extra wins
    assert "ssl.ca.location" not in conf


def test_secrets_are_masked_in_repr_and_dumps() -> None:
    s = KafkaSettings(sasl_password=SecretStr("hunter2"), ssl_key_password=SecretStr("k3y"))
    for text in (repr(s), str(s), s.model_dump_json()):
        assert "hunter2" not in text
        assert "k3y" not in text


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKBEAT_KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("BACKBEAT_KAFKA_TOPIC_PREFIX", "prod.")
    s = KafkaSettings()
    assert s.bootstrap_servers == "env:9092"
    assert s.topic("listen_events") == "prod.listen_events"
    assert s.backbeat_topic("prod.listen_events") == "listen_events"
    assert KafkaSettings(bootstrap_servers="flag:1").bootstrap_servers == "flag:1"


def test_partition_names_round_trip() -> None:
    assert parse_partition_name(partition_name("a.b:c", 7)) == ("a.b:c", 7)
    assert parse_partition_name("/data/listen_events.jsonl") is None
    assert parse_partition_name("kafka:topic:x") is None
