"""``deploy/compose.yaml`` is well formed: a KRaft Kafka, topics created before the backbeat
services start, and every backbeat command in it is one the CLI accepts. (No container engine
here: the file is checked, not run.)"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from backbeat.commands import app

COMPOSE = Path(__file__).parents[2] / "deploy" / "compose.yaml"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    services = _compose()["services"]
    assert not any("zookeeper" in name for name in services)
    kafka = services["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "healthcheck" in kafka


def test_backbeat_services_wait_for_topics_and_reach_the_broker() -> None:
    services = _compose()["services"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("produce", "stream"):
        service = services[name]
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert service["environment"]["BACKBEAT_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_every_backbeat_command_parses() -> None:
    runner = CliRunner()
    for name in ("topics", "produce", "stream"):
        script = _compose()["services"][name]["command"]
        command = script.split("&&")[-1].strip().rstrip('"')
        argv = shlex.split(command)
        assert argv[0] == "backbeat"
        result = runner.invoke(app, [*argv[1:], "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_published_ports_are_reachable_from_this_machine_only() -> None:
    """The broker takes unauthenticated clients and the dashboard has no token by default."""
    services = _compose()["services"]
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert set(published) == {"kafka", "stream"}, published
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), (name, port)
    # A token set in the shell reaches the server (never an empty one: that is refused).
    assert services["stream"]["environment"]["BACKBEAT_API_TOKEN"] is None
