"""``deploy/k8s`` renders, validates and means what it should: each kustomize overlay (``local``,
``gke``, and each with the Spark component added) is built with ``kubectl kustomize``, every
object is checked against the Kubernetes 1.31 OpenAPI schemas by kubernetes-validate in strict
mode (unknown fields are errors), and the semantics are asserted: serve is probed on
``/health`` and autoscaled, the stream is a scaled consumer group on the PostgreSQL store, the
batch runs hourly one at a time, secrets come only from Secret objects, every container runs
as non-root with resources, and every backbeat command line is one the CLI accepts. A
deliberately broken copy of the manifests must fail validation. (No cluster here: the
manifests are checked, not applied.)

Next: ``deploy/k8s/base/kustomization.yaml``, ``test_workflows.py`` (the CD that applies them).
"""

from __future__ import annotations

import base64
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from backbeat.commands import app

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBECTL = shutil.which("kubectl")
KUBERNETES_VERSION = "1.31.0"
OVERLAYS = ("local", "gke")
SPARK_APP = "$(python -m backbeat.commands.spark_submit --path)"
# Flags another branch is adding to `backbeat stream` (the Prometheus endpoint): accepted here
# until that branch lands, checked like any other flag after.
SECRET_ENV = {
    "PGPASSWORD",
    "BACKBEAT_API_TOKEN",
    "BACKBEAT_KAFKA_SASL_USERNAME",
    "BACKBEAT_KAFKA_SASL_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
}
WORKLOADS = {"Deployment", "StatefulSet", "Job", "CronJob"}

pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed (it renders the kustomize overlays)"
)

Manifest = list[dict[str, Any]]


def kustomize(directory: Path) -> Manifest:
    """The objects ``kubectl kustomize DIRECTORY`` renders."""
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def validation_errors(objects: Manifest) -> list[str]:
    """kubernetes-validate's strict verdict on each object (a kind without a schema is an error
    too, where its command line only warns)."""
    from kubernetes_validate import utils

    errors = []
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            utils.validate(obj, KUBERNETES_VERSION, strict=True)
        except utils.ValidationError as exc:
            errors.append(f"{name}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except utils.SchemaNotFoundError as exc:
            errors.append(f"{name}: {exc.message}")
    return errors


def copy_tree(tmp: Path) -> Path:
    """A copy of ``deploy/k8s`` to modify (its overlays' relative paths still resolve)."""
    copy = tmp / "k8s"
    shutil.copytree(K8S, copy)
    return copy


def with_spark(tree: Path, overlay: str) -> Path:
    """``kustomize edit add component ../../components/spark`` in ``tree``'s overlay."""
    kustomization = tree / "overlays" / overlay / "kustomization.yaml"
    text = kustomization.read_text()
    kustomization.write_text(text + "components:\n  - ../../components/spark\n")
    return kustomization.parent


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Manifest]:
    """Every variant, rendered once: ``local``, ``gke``, ``local+spark``, ``gke+spark``."""
    out = {name: kustomize(K8S / "overlays" / name) for name in OVERLAYS}
    for name in OVERLAYS:
        tree = copy_tree(tmp_path_factory.mktemp(f"{name}-spark"))
        out[f"{name}+spark"] = kustomize(with_spark(tree, name))
    return out


def find(objects: Manifest, kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def named(objects: Manifest, kind: str, prefix: str) -> dict[str, Any]:
    """The object of ``kind`` whose name is ``prefix`` or a generated ``prefix-<hash>``."""
    matches = [
        o
        for o in objects
        if o["kind"] == kind and re.fullmatch(rf"{prefix}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
    ]
    assert len(matches) == 1, f"{kind}/{prefix}: {len(matches)} found"
    return matches[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        spec: dict[str, Any] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = obj["spec"]["template"]["spec"]
    return spec


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def workloads(objects: Manifest) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, pod spec) of every workload."""
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            yield obj, pod_spec(obj)


def config(objects: Manifest) -> dict[str, str]:
    data: dict[str, str] = named(objects, "ConfigMap", "backbeat-config")["data"]
    return data


def expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion of a command-line argument."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), arg)


def is_backbeat(container: dict[str, Any]) -> bool:
    image: str = container["image"]
    return image.rsplit("/", 1)[-1].split(":")[0] in {"backbeat", "backbeat-spark"}


def container_of(objects: Manifest, kind: str, name: str) -> dict[str, Any]:
    only: dict[str, Any]
    (only,) = pod_spec(find(objects, kind, name))["containers"]
    return only


def flag_values(args: list[str]) -> dict[str, str]:
    """``--flag=value`` arguments as a mapping (flags without a value map to '')."""
    out = {}
    for arg in args:
        if arg.startswith("--"):
            key, _, value = arg.partition("=")
            out[key] = value
    return out


@pytest.mark.parametrize("variant", ["local", "gke", "local+spark", "gke+spark"])
def test_every_object_validates_strictly(rendered: dict[str, Manifest], variant: str) -> None:
    objects = rendered[variant]
    assert validation_errors(objects) == []
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {
        "backbeat"
    }


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("replicas: 2\n", "replicas: two\n"),  # a wrong type
        ("readinessProbe:", "readynessProbe:"),  # a field Kubernetes does not know
    ],
)
def test_a_broken_manifest_fails_validation(tmp_path: Path, old: str, new: str) -> None:
    tree = copy_tree(tmp_path)
    serve = tree / "base" / "serve.yaml"
    assert old in serve.read_text()
    serve.write_text(serve.read_text().replace(old, new, 1))
    errors = validation_errors(kustomize(tree / "overlays" / "local"))
    assert len(errors) == 1, errors
    assert errors[0].startswith("Deployment/backbeat-serve: spec.")


def test_serve_is_probed_on_health_and_autoscaled_on_cpu(rendered: dict[str, Manifest]) -> None:
    for variant in OVERLAYS:
        objects = rendered[variant]
        serve = container_of(objects, "Deployment", "backbeat-serve")
        ports = {p["name"]: p["containerPort"] for p in serve["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            get = serve[probe]["httpGet"]
            assert get["path"] == "/health"
            assert ports.get(get["port"], get["port"]) == 8000
        args = [expand(a, config(objects)) for a in serve["args"]]
        assert args[0] == "serve"
        flags = flag_values(args)
        assert flags["--store"].startswith("postgresql://")
        assert (flags["--host"], flags["--port"]) == ("0.0.0.0", "8000")
        service = find(objects, "Service", "backbeat-serve")
        assert service["spec"]["selector"].items() <= pod_labels(objects, "backbeat-serve").items()
        hpa = find(objects, "HorizontalPodAutoscaler", "backbeat-serve")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "backbeat-serve",
        }
        assert hpa["spec"]["minReplicas"] >= 2
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"


def pod_labels(objects: Manifest, deployment: str) -> dict[str, str]:
    labels: dict[str, str] = find(objects, "Deployment", deployment)["spec"]["template"][
        "metadata"
    ]["labels"]
    return labels


def test_stream_is_a_scaled_consumer_group_on_the_postgresql_store(
    rendered: dict[str, Manifest],
) -> None:
    for variant in OVERLAYS:
        objects = rendered[variant]
        deployment = find(objects, "Deployment", "backbeat-stream")
        assert deployment["spec"]["replicas"] >= 2
        stream = container_of(objects, "Deployment", "backbeat-stream")
        env = config(objects)
        args = [expand(a, env) for a in stream["args"]]
        flags = flag_values(args)
        assert args[0] == "stream"
        assert flags["--group"] == "backbeat"
        assert flags["--bootstrap-servers"] == env["BACKBEAT_KAFKA_BOOTSTRAP_SERVERS"]
        assert flags["--store"].startswith("postgresql://")
        assert "--lake" not in flags  # lake.yaml's single writer has it
        assert flags["--metrics-port"] == "9108"
        assert flags["--metrics-host"] == "0.0.0.0"
        assert {"name": "metrics", "containerPort": 9108} in stream["ports"]
        assert stream["livenessProbe"]["httpGet"]["port"] == "metrics"


def test_the_lake_has_one_writer_with_its_checkpoint_on_a_volume(
    rendered: dict[str, Manifest],
) -> None:
    for variant in OVERLAYS:
        objects = rendered[variant]
        lake = find(objects, "StatefulSet", "backbeat-lake")
        assert lake["spec"]["replicas"] == 1
        (claim,) = lake["spec"]["volumeClaimTemplates"]
        writer = container_of(objects, "StatefulSet", "backbeat-lake")
        flags = flag_values([expand(a, config(objects)) for a in writer["args"]])
        assert "--group" not in flags
        assert flags["--lake"].startswith("s3://")
        assert "--no-dlq" in flags  # the group members write the dead-letter topics, once
        mount = {m["name"]: m["mountPath"] for m in writer["volumeMounts"]}[
            claim["metadata"]["name"]
        ]
        assert flags["--store"].startswith(mount + "/")


def test_no_consumer_group_member_has_a_sink_that_needs_one_writer(
    rendered: dict[str, Manifest],
) -> None:
    """The engine refuses a single-writer sink (lake, csv) in a consumer group at start: a
    manifest that asked for one would crash-loop."""
    from backbeat.sinks.registry import SINKS

    single = {name for name in ("lake", "csv", "mongo") if SINKS.load(name).single_writer}
    assert single == {"lake", "csv"}
    for variant, objects in rendered.items():
        for obj, spec in workloads(objects):
            for container in containers(spec):
                args = container.get("args") or []
                if "--group" not in flag_values(args):
                    continue
                chosen = {a.partition("=")[2] for a in args if a.startswith("--sink=")}
                chosen |= {f.removeprefix("--") for f in flag_values(args)} & {"lake", "csv"}
                assert not chosen & single, (variant, obj["metadata"]["name"], chosen)


def test_batch_runs_hourly_one_at_a_time(rendered: dict[str, Manifest]) -> None:
    for variant in OVERLAYS:
        objects = rendered[variant]
        cron = find(objects, "CronJob", "backbeat-batch")
        minute, *rest = cron["spec"]["schedule"].split()
        assert 0 <= int(minute) < 60
        assert rest == ["*", "*", "*", "*"]
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
        batch = container_of(objects, "CronJob", "backbeat-batch")
        env = config(objects)
        args = [expand(a, env) for a in batch["args"]]
        assert args[:2] == ["batch", "run"]
        flags = flag_values(args)
        assert flags["--lake"].startswith("s3://")
        assert flags["--warehouse"].startswith("postgresql://")
        assert "--every" not in flags  # one run per schedule


def test_store_urls_carry_no_password(rendered: dict[str, Manifest]) -> None:
    for variant in OVERLAYS:
        env = config(rendered[variant])
        for key in ("BACKBEAT_STORE", "BACKBEAT_WAREHOUSE"):
            url = env[key]
            assert url.startswith("postgresql://")
            userinfo = url.removeprefix("postgresql://").split("@", 1)[0]
            assert ":" not in userinfo, f"{variant}: {key} holds a password"


def test_secrets_come_only_from_secret_objects(rendered: dict[str, Manifest]) -> None:
    for variant, objects in rendered.items():
        for key in config(objects):
            assert key not in SECRET_ENV, f"{variant}: {key} in the ConfigMap"
        secrets = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
        for obj, spec in workloads(objects):
            for container in containers(spec):
                for var in container.get("env", []):
                    if var["name"] not in SECRET_ENV:
                        continue
                    where = f"{variant}: {obj['metadata']['name']}/{var['name']}"
                    assert "value" not in var, where
                    ref = var["valueFrom"]["secretKeyRef"]
                    if variant.startswith("local"):
                        assert ref["name"] in secrets, where  # the dev Secret, hash and all
                    else:
                        assert ref["name"] == "backbeat-secrets", where  # made out of band
        if variant.startswith("gke"):
            assert secrets == set(), "the gke overlay must not carry a Secret"


def test_no_secret_value_appears_outside_its_secret(rendered: dict[str, Manifest]) -> None:
    objects = rendered["local"]
    secret = named(objects, "Secret", "backbeat-secrets")
    values = {base64.b64decode(v).decode() for v in secret["data"].values()}
    assert values
    for value in values:
        assert value.startswith(("dev-only", "backbeat-dev")), "local secrets say they are dev-only"
    elsewhere = yaml.safe_dump_all([o for o in objects if o["kind"] != "Secret"])
    assert not [v for v in values if v in elsewhere]


def test_every_container_runs_as_non_root_with_resources(rendered: dict[str, Manifest]) -> None:
    for variant, objects in rendered.items():
        for obj, spec in workloads(objects):
            pod = spec.get("securityContext", {})
            for container in containers(spec):
                where = f"{variant}: {obj['metadata']['name']}/{container['name']}"
                ctx = container.get("securityContext", {})
                assert ctx.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
                assert ctx.get("runAsUser", pod.get("runAsUser", 0)) != 0, where
                assert ctx["allowPrivilegeEscalation"] is False, where
                assert ctx["capabilities"]["drop"] == ["ALL"], where
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= container["resources"][kind].keys(), where
                if is_backbeat(container):
                    assert pod["runAsUser"] == 10001, where
                    assert ctx["readOnlyRootFilesystem"] is True, where
                    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                    volumes = {v["name"]: v for v in spec["volumes"]}
                    assert "emptyDir" in volumes[mounts["/tmp"]], where


def test_backbeat_images_per_overlay(rendered: dict[str, Manifest]) -> None:
    expected = {
        "local": ("backbeat:local", "backbeat-spark:local"),
        "gke": (
            "REGION-docker.pkg.dev/PROJECT/backbeat/backbeat:",
            "REGION-docker.pkg.dev/PROJECT/backbeat/backbeat-spark:",
        ),
    }
    for variant, objects in rendered.items():
        runtime, spark = expected[variant.split("+")[0]]
        for obj, spec in workloads(objects):
            for container in filter(is_backbeat, containers(spec)):
                image = container["image"]
                if obj["kind"] == "Job":  # the Spark driver overrides the entrypoint
                    assert image.startswith(spark), image
                    assert "command" in container
                else:
                    assert image.startswith(runtime), image
                    assert "command" not in container, "the image's entrypoint is backbeat"


def test_the_spark_component_replaces_the_stream_with_a_spark_driver(
    rendered: dict[str, Manifest],
) -> None:
    for variant in ("local+spark", "gke+spark"):
        objects = rendered[variant]
        assert not [o for o in objects if o["metadata"]["name"] == "backbeat-stream"]
        assert not [
            o for o in objects if o["metadata"]["name"] == "backbeat-lake"
        ]  # the driver writes it
        job = find(objects, "Job", "backbeat-spark")
        spec = pod_spec(job)
        assert spec["serviceAccountName"] == "backbeat-spark"
        driver = container_of(objects, "Job", "backbeat-spark")
        env = {v["name"]: v.get("value") for v in driver["env"]}
        assert env["SPARK_EXECUTOR_IMAGE"] == driver["image"], "executors run the driver's build"
        words = spark_submit(driver)
        assert words[:2] == ["exec", "spark-submit"]
        assert words[words.index("--master") + 1] == "k8s://https://kubernetes.default.svc"
        assert words[words.index("--deploy-mode") + 1] == "client"
        stream_args = words[words.index(SPARK_APP) + 1 :]
        assert "--group" not in stream_args, "Spark refuses --group"
        assert {"--bootstrap-servers", "--store"} <= set(stream_args)

        template = named(objects, "ConfigMap", "backbeat-spark-executor")["data"]["executor.yaml"]
        executor = yaml.safe_load(template)
        assert validation_errors([executor]) == [], "the executors' pod template"
        assert executor["spec"]["securityContext"]["runAsNonRoot"] is True
        mounts = {m["mountPath"]: m["name"] for m in driver["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        config_map = volumes[mounts["/etc/backbeat/spark"]]["configMap"]["name"]
        assert (
            config_map == named(objects, "ConfigMap", "backbeat-spark-executor")["metadata"]["name"]
        )

        binding = find(objects, "RoleBinding", "backbeat-spark")
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "backbeat-spark", "namespace": "backbeat"}
        ]
        role = find(objects, "Role", binding["roleRef"]["name"])
        granted = {
            (resource, verb)
            for rule in role["rules"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }
        for resource in ("pods", "services", "configmaps", "persistentvolumeclaims"):
            for verb in ("create", "get", "list", "watch", "delete"):
                assert (resource, verb) in granted, (resource, verb)


def spark_submit(driver: dict[str, Any]) -> list[str]:
    """The Spark driver's shell command as words, after Kubernetes' ``$$`` unescaping."""
    shell, flag, script = driver["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    return shlex.split(script.replace("$$", "$"))


def cli_options(path: list[str]) -> set[str]:
    """Every option of the backbeat command at ``path`` (``["batch", "run"]``)."""
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_every_backbeat_command_line_is_one_the_cli_accepts(
    rendered: dict[str, Manifest],
) -> None:
    lines: list[tuple[list[str], list[str]]] = []
    for variant in ("local+spark", "gke"):
        for obj, spec in workloads(rendered[variant]):
            for container in filter(is_backbeat, containers(spec)):
                if obj["kind"] == "Job":
                    words = spark_submit(container)
                    lines.append((["stream"], words[words.index(SPARK_APP) + 1 :]))
                    continue
                args = container["args"]
                path = list(args[: next(i for i, a in enumerate(args) if a.startswith("--"))])
                lines.append((path, args[len(path) :]))
    assert {" ".join(path) for path, _ in lines} == {
        "produce",
        "topics create",
        "stream",
        "serve",
        "batch run",
    }
    for path, args in lines:
        known = cli_options(path)
        flags = {a.partition("=")[0] for a in args if a.startswith("--")}
        assert flags <= known, f"{' '.join(path)}: unknown {sorted(flags - known)}"
