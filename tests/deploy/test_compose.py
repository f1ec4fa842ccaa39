"""``deploy/compose.yaml`` and its Prometheus and Grafana files are well formed: the compose
file validates against the Compose Specification (offline, check-jsonschema's vendored
schema) and a broken one does not; every long-running service has a healthcheck and every
dependency a condition; every backbeat command (healthchecks too) parses with the CLI;
nothing is published beyond 127.0.0.1; Prometheus scrapes services and ports that exist; the
Grafana dashboard queries only metrics of the contract (``tests/support/metrics_names.py``).
No container engine here: the file is checked, and ``test_stack.py`` runs its commands.

Next: ``tests/support/compose.py`` (reading the file, parsing commands), ``test_stack.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import metrics_names
from tests.support.compose import (
    COMPOSE,
    DEPLOY,
    CliParseError,
    backbeat_commands,
    compose,
    healthcheck_commands,
    parse_cli,
    runs_backbeat,
    services,
)

PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "backbeat.json"
JOBS = {"topics", "produce", "minio-setup"}
"""One-shot services: they finish (``restart: "no"``), so they have no healthcheck."""
DEFAULT_PROFILE = {
    "kafka", "topics", "produce", "postgres", "minio", "minio-setup", "stream", "serve",
    "warehouse", "prometheus", "grafana",
}  # fmt: skip
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
METRICS_PORT = "9108"


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    """``check-jsonschema --builtin-schema vendor.compose-spec PATH`` from this venv."""
    tool = Path(sys.executable).parent / "check-jsonschema"
    if not tool.exists():
        pytest.skip("check-jsonschema is not installed beside this Python (make install)")
    return subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_compose_file_validates_against_the_compose_spec() -> None:
    done = _check_jsonschema(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "broken",
    [
        {"depends_on": {"kafka": {"condition": "bogus"}}},
        {"ports": 12},
        {"restart": ["always"]},
    ],
    ids=["bad-condition", "ports-not-a-list", "restart-not-a-string"],
)
def test_a_broken_compose_file_fails_the_check(tmp_path: Path, broken: dict[str, Any]) -> None:
    """The check is not a rubber stamp: a wrong condition or type is refused."""
    data = compose()
    data["services"]["serve"].update(broken)
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(data))
    done = _check_jsonschema(path)
    assert done.returncode != 0, done.stdout


def test_profiles_split_the_stack() -> None:
    found = services()
    default = {name for name, s in found.items() if not s.get("profiles")}
    assert default == DEFAULT_PROFILE
    assert {n for n, s in found.items() if "spark" in s.get("profiles", [])} == {
        "spark-master", "spark-worker", "stream-spark",
    }  # fmt: skip
    assert {n for n, s in found.items() if "mongo" in s.get("profiles", [])} == {
        "mongo", "stream-mongo",
    }  # fmt: skip


def test_every_service_but_the_jobs_has_a_healthcheck() -> None:
    for name, service in services().items():
        if name in JOBS:  # none, or the image's switched off
            assert service.get("restart") == "no", name
            assert service.get("healthcheck", {"disable": True}) == {"disable": True}, name
            if runs_backbeat(service):
                assert service["healthcheck"] == {"disable": True}, name
        else:
            test = service.get("healthcheck", {}).get("test")
            assert test, name
            assert test[0] in ("CMD", "CMD-SHELL"), (name, test)


def test_every_dependency_has_a_condition_that_fits() -> None:
    found = services()
    for name, service in found.items():
        for needed, how in service.get("depends_on", {}).items():
            assert needed in found, (name, needed)
            condition = how["condition"]
            assert condition in CONDITIONS, (name, needed, condition)
            if needed in JOBS:
                assert condition == "service_completed_successfully", (name, needed)
            else:
                assert condition == "service_healthy", (name, needed)
            # a default service never waits for one that only a profile starts
            if not service.get("profiles"):
                assert not found[needed].get("profiles"), (name, needed)


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    found = services()
    assert not any("zookeeper" in name for name in found)
    kafka = found["kafka"]
    env = kafka["environment"]
    assert kafka["image"] == "apache/kafka:3.9.0"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_backbeat_services_use_the_project_image_and_read_addresses_from_env() -> None:
    found = services()
    for name in backbeat_commands():
        service = found[name]
        target = "spark" if name.startswith(("stream-spark", "spark-")) else "runtime"
        assert service["build"] == {"context": "..", "target": target}, name
        env = service["environment"]
        reads_kafka = name in ("topics", "produce") or service["command"][2] == "stream"
        assert ("BACKBEAT_KAFKA_BOOTSTRAP_SERVERS" in env) == reads_kafka, name
        if reads_kafka:
            assert env["BACKBEAT_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        if service["command"][2] == "stream":  # the flag picks Kafka as the input
            assert service["command"][3:5] == ["--bootstrap-servers", "kafka:9092"], name
        else:
            assert "--bootstrap-servers" not in service["command"], name
        assert "--store" not in service["command"], name  # BACKBEAT_STORE
    for name in ("stream", "serve", "warehouse"):
        env = found[name]["environment"]
        assert env["BACKBEAT_STORE"] == "postgresql://", name
        assert (env["PGHOST"], env["PGDATABASE"]) == ("postgres", "backbeat"), name
    for name in ("stream", "stream-spark", "stream-mongo"):
        env = found[name]["environment"]
        assert (env["BACKBEAT_METRICS_HOST"], env["BACKBEAT_METRICS_PORT"]) == (
            "0.0.0.0", METRICS_PORT,
        ), name  # fmt: skip
    assert found["stream-spark"]["build"]["target"] == "spark"
    for name in ("spark-master", "spark-worker"):
        assert found[name]["entrypoint"] == ["spark-class"], name


def test_secrets_come_from_the_shell_with_a_local_default_only() -> None:
    found = services()
    assert found["postgres"]["environment"]["POSTGRES_PASSWORD"] == (
        "${POSTGRES_PASSWORD:-backbeat-dev-only}"
    )
    for name in backbeat_commands():  # each service gets only the secrets it needs
        env = found[name]["environment"]
        uses_postgres = env.get("BACKBEAT_STORE") == "postgresql://"
        uses_lake = "--lake" in found[name]["command"]
        assert ("PGPASSWORD" in env) == uses_postgres, name
        assert ("AWS_SECRET_ACCESS_KEY" in env) == uses_lake, name
        if uses_postgres:
            assert env["PGPASSWORD"] == "${POSTGRES_PASSWORD:-backbeat-dev-only}", name
        if uses_lake:
            assert env["AWS_SECRET_ACCESS_KEY"] == "${MINIO_ROOT_PASSWORD:-backbeat-dev-only}"
    assert "BACKBEAT_API_TOKEN" not in found["stream"]["environment"]  # serve answers the API
    # A token set in the shell reaches the server (never an empty one: that is refused).
    assert "BACKBEAT_API_TOKEN" in found["serve"]["environment"]
    assert found["serve"]["environment"]["BACKBEAT_API_TOKEN"] is None
    assert "PASSWORD=" not in COMPOSE.read_text().replace("_PASSWORD=", "")


def test_every_backbeat_command_parses() -> None:
    commands = {
        **{name: argv for name, argv in backbeat_commands().items()},
        **{f"{name} (healthcheck)": argv for name, argv in healthcheck_commands().items()},
    }
    assert {"topics", "produce", "stream", "serve", "warehouse"} <= set(commands)
    for name, argv in commands.items():
        try:
            parse_cli(argv)
        except CliParseError as exc:
            pytest.fail(f"{name}: {exc}")


def test_backbeat_commands_log_json() -> None:
    for name, argv in backbeat_commands().items():
        assert argv[:2] == ["--log-format", "json"], name


def test_published_ports_are_reachable_from_this_machine_only() -> None:
    """The broker takes unauthenticated clients and the dashboard has no token by default."""
    published = {name: s["ports"] for name, s in services().items() if "ports" in s}
    assert {"kafka", "serve", "prometheus", "grafana"} <= set(published)
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str), (name, port)
            assert port.startswith("127.0.0.1:"), (name, port)
    assert "0.0.0.0:" not in COMPOSE.read_text()
    assert services()["serve"]["ports"] == ["127.0.0.1:8000:8000"]


def _listens_on(name: str, service: dict[str, Any]) -> set[str]:
    """The ports a service serves inside the compose network, as far as the file says."""
    ports = {str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])}
    env = service.get("environment") or {}
    if runs_backbeat(service) and env.get("BACKBEAT_METRICS_PORT"):
        ports.add(str(env["BACKBEAT_METRICS_PORT"]))
    command = [str(arg) for arg in service.get("command", [])]
    if "--port" in command:
        ports.add(command[command.index("--port") + 1])
    return ports


def test_prometheus_scrapes_services_and_ports_that_exist() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    found = services()
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {"stream:9108", "serve:8000"}
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert host in found, target
        assert port in _listens_on(host, found[host]), (target, _listens_on(host, found[host]))
    volumes = found["prometheus"]["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    found = services()["grafana"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in found["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in found["volumes"]
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    (source,) = sources["datasources"]
    assert (source["type"], source["url"], source["uid"]) == (
        "prometheus", "http://prometheus:9090", "prometheus",
    )  # fmt: skip
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/backbeat.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]


def dashboard_series() -> set[str]:
    """Every ``backbeat_*`` series name the Grafana dashboard's queries read."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in metrics_names.used_in(target["expr"])
    }


def test_the_dashboard_queries_only_metrics_of_the_contract() -> None:
    contract = {**metrics_names.STREAM, **metrics_names.SERVE}
    used = dashboard_series()
    for series in used:
        assert metrics_names.family(series) in contract, series
    # and it shows what the issue asks for
    titles = " | ".join(p["title"] for p in json.loads(DASHBOARD.read_text())["panels"])
    for needed in ("Events in", "Dead letters", "Consumer lag", "Batch latency",
                   "Watermark delay", "Sink errors", "requests", "latency"):  # fmt: skip
        assert needed in titles, needed
    assert {metrics_names.family(s) for s in used} == set(contract)
