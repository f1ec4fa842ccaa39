"""The Compose stack's backbeat services, run for real without Docker: the commands and
environments of ``deploy/compose.yaml`` for ``topics``, ``serve``, ``stream``, ``produce`` and
``warehouse``, each a ``python -m backbeat`` process, with only the addresses pointed at the
suite's own servers (the tansu broker for Kafka, the PostgreSQL server for ``postgres``, moto
for MinIO) and a few flags bounded (``produce --total``, ``warehouse`` without ``--every``).

Started in the order Compose may start them (``serve`` before the stream's first commit),
each waited for by polling, never a fixed sleep. Then: events flowed into the dashboard (the
API answers, the page is served), the lake holds Parquet in its bucket, the warehouse job
loaded a finished hour (the simulated day is in the past), and the live ``/metrics`` of the
stream and of serve carry every metric the Grafana dashboard queries.

Next: ``tests/support/compose.py`` (the file, flags), ``test_compose.py`` (its structure),
``tests/support/metrics_names.py`` (the metrics contract).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from tests.support import metrics_names
from tests.support.compose import (
    service_env,
    services,
    with_flags,
    without_flags,
)
from tests.support.sockets import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEADLINE_S = 60.0
EVENTS = 10_000
"""``produce --total``: enough for every topic and several batches, a few seconds' work."""
T = TypeVar("T")


@dataclass
class Stack:
    """The running processes, their logs, and where they answer."""

    folder: Path
    env: dict[str, str]
    """This process's environment without a developer's BACKBEAT_*, PG* and AWS_*."""
    overrides: dict[str, str]
    """Addresses (and this test's own names) over the services' ``environment:``."""
    api: str
    metrics: str
    lake: str
    s3_endpoint: str
    s3: Any
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    first_health: Any = None
    """serve's ``/health`` before the stream started (its store empty)."""
    started: float = field(default_factory=time.monotonic)
    steps: list[str] = field(default_factory=list)

    def mark(self, step: str) -> None:
        """Note how long the stack has been up when ``step`` is done (printed at the end)."""
        self.steps.append(f"{step} {time.monotonic() - self.started:.1f}s")

    def argv(self, name: str, flags: dict[str, str] | None = None) -> list[str]:
        """The service's command, with ``flags`` replaced (``with_flags``)."""
        command = [str(arg) for arg in services()[name]["command"]]
        return with_flags(command, flags or {})

    def environment(self, name: str, **extra: str) -> dict[str, str]:
        """The service's environment over this process's, addresses overridden."""
        return {**self.env, **service_env(services()[name], {}), **self.overrides, **extra}

    def start(self, name: str, argv: list[str], **extra: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        with log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "backbeat", *argv],
                stdout=log, stderr=subprocess.STDOUT, env=self.environment(name, **extra),
                cwd=self.folder,
            )  # fmt: skip
        self.processes[name] = proc
        return proc

    def run(self, name: str, argv: list[str], timeout: float = DEADLINE_S) -> str:
        """Run a one-shot service to its end; its output (fails on a non-zero exit)."""
        proc = self.start(name, argv)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} did not finish within {timeout:.0f}s:\n{self.log(name)}")
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{self.log(name)}"
        return self.log(name)

    def log(self, name: str, tail: int = 40) -> str:
        path = self.folder / f"{name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(lines[-tail:])

    def alive(self) -> None:
        """Fail, with its log, when a long-running service has died."""
        for name, proc in self.processes.items():
            if name in ("stream", "serve") and proc.poll() is not None:
                pytest.fail(f"{name} exited {proc.returncode}:\n{self.log(name)}")

    def wait_for(self, what: str, check: Callable[[], T | None]) -> T:
        """Poll ``check`` until it returns something (not None, not False) or the deadline."""
        deadline = time.monotonic() + DEADLINE_S
        pause = 0.05
        while time.monotonic() < deadline:
            self.alive()
            found = check()
            if found is not None and found is not False:
                return found
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        logs = "\n".join(f"--- {n}\n{self.log(n)}" for n in self.processes)
        pytest.fail(f"no {what} within {DEADLINE_S:.0f}s\n{logs}")

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _get(url: str) -> tuple[int, bytes] | None:
    """Status and body of a GET (None: nothing answers yet)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except OSError:
        return None


def _json(url: str) -> Any:
    got = _get(url)
    if got is None or got[0] != 200:
        return None
    return json.loads(got[1])


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_servers: str,
    postgres_server: Any,
    s3_endpoint: str,
) -> Iterator[Stack]:
    """The compose services started as processes against the suite's servers."""
    from pyarrow import fs

    from tests.conftest import EXTERNAL_S3
    from tests.support.postgres import drop_database, fresh_database
    from tests.support.s3 import CREDENTIALS

    folder = tmp_path_factory.mktemp("stack")
    credentials = {} if EXTERNAL_S3 else CREDENTIALS
    access = credentials.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY_ID")
    secret = credentials.get("AWS_SECRET_ACCESS_KEY") or os.environ.get("AWS_SECRET_ACCESS_KEY")
    where = urlsplit(s3_endpoint)
    s3 = fs.S3FileSystem(
        endpoint_override=where.netloc, scheme=where.scheme, region="us-east-1",
        access_key=access, secret_key=secret, allow_bucket_creation=True,
    )  # fmt: skip
    bucket = f"stack{uuid.uuid4().hex[:10]}"
    s3.create_dir(bucket)
    database = fresh_database(postgres_server)
    db = urlsplit(database)
    api_port, metrics_port = free_port(), free_port()
    overrides = {  # only addresses (and the test's own names): the rest is the file's
        "BACKBEAT_KAFKA_BOOTSTRAP_SERVERS": kafka_servers,
        "BACKBEAT_KAFKA_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
        "BACKBEAT_KAFKA_EXTRA": '{"log_level": "3"}',
        "PGHOST": db.hostname or "127.0.0.1",
        "PGPORT": str(db.port or 5432),
        "PGUSER": db.username or "postgres",
        "PGDATABASE": db.path.lstrip("/"),
        **({"PGPASSWORD": db.password} if db.password else {}),  # BACKBEAT_TEST_POSTGRES's
        "BACKBEAT_METRICS_HOST": "127.0.0.1",
        "BACKBEAT_METRICS_PORT": str(metrics_port),
        **{k: v for k, v in {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}.items()
           if v},
    }  # fmt: skip
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BACKBEAT_", "PG", "AWS_"))}
    base["PGPASSFILE"] = "/nonexistent/pgpass"  # the trusted superuser needs no password
    stack = Stack(
        folder,
        base,
        overrides,
        api=f"http://127.0.0.1:{api_port}",
        metrics=f"http://127.0.0.1:{metrics_port}/metrics",
        lake=f"s3://{bucket}/events",
        s3_endpoint=s3_endpoint,
        s3=s3,
    )
    try:
        # serve starts before the store holds anything, as Compose may start it
        stack.start("serve", stack.argv("serve", {"--host": "127.0.0.1", "--port": str(api_port)}))
        stack.run("topics", stack.argv("topics"))
        stack.mark("topics")
        stack.first_health = stack.wait_for("serve /health", lambda: _json(f"{stack.api}/health"))
        stack.mark("serve")
        stack.start(
            "stream",
            [
                *stack.argv(
                    "stream",
                    {
                        "--bootstrap-servers": kafka_servers,
                        "--lake": stack.lake,
                        "--sink-option lake.endpoint=": f"lake.endpoint={s3_endpoint}",
                    },
                ),
                "--batch-size", "2000",
            ],
        )  # fmt: skip
        stack.run("produce", [*stack.argv("produce"), "--total", str(EVENTS)])
        stack.mark("produce")
        yield stack
    finally:
        stack.stop()
        print(f"\nstack: {', '.join(stack.steps)}")
        drop_database(postgres_server, database)


def _committed(stack: Stack) -> int | None:
    health = _json(f"{stack.api}/health")
    return health["batch_id"] if health and health["batch_id"] else None


def test_serve_answered_before_the_store_held_anything(stack: Stack) -> None:
    """Compose starts serve beside a new stream: it answers at once, then the results."""
    assert stack.first_health == {"status": "ok", "batch_id": None, "last_commit_age_s": None}


def test_events_flow_through_kafka_and_postgresql_to_the_dashboard(stack: Stack) -> None:
    stack.wait_for("a first commit seen by serve", lambda: _committed(stack))

    def played() -> int | None:
        top = _json(f"{stack.api}/api/top-songs?window=all&limit=5")
        summary = _json(f"{stack.api}/api/summary")
        if not top or not top["items"] or summary is None:
            return None
        return sum(int(song["plays"]) for song in top["items"])

    assert stack.wait_for("top songs on the API", played) > 0
    stack.mark("dashboard")
    page = _get(f"{stack.api}/")
    assert page is not None
    assert page[0] == 200
    assert b"<html" in page[1].lower()


def test_the_stream_writes_the_lake_and_the_warehouse_job_loads_it(stack: Stack) -> None:
    from pyarrow import fs

    def parquet() -> list[str] | None:
        found = stack.s3.get_file_info(
            fs.FileSelector(stack.lake.removeprefix("s3://"), recursive=True, allow_not_found=True)
        )
        names = [f.path for f in found if f.path.endswith(".parquet") and "/_" not in f.path]
        return names or None  # fmt: skip

    files = stack.wait_for("Parquet in the lake's bucket", parquet)
    assert any("/listen_events/year=2026/month=1/day=5/" in name for name in files), files
    argv = without_flags(stack.argv("warehouse"), "--every")  # one run, not hourly
    argv = with_flags(
        argv,
        {"--lake": stack.lake, "--lake-option endpoint=": f"endpoint={stack.s3_endpoint}"},
    )
    output = stack.run("warehouse", ["--json", *argv], timeout=90)
    stack.mark("warehouse")
    report = json.loads(output.strip().splitlines()[-1])
    assert report["hours_loaded"] >= 1, report  # the simulated hour ended long ago
    assert report["hours_deduplicated"] >= 1, report
    assert report["model"]["fact_streams"] > 0, report  # --model: the star schema


def test_the_live_metrics_carry_what_the_grafana_dashboard_queries(stack: Stack) -> None:
    from tests.deploy.test_compose import dashboard_series

    stack.wait_for("a first commit seen by serve", lambda: _committed(stack))
    stream_page = stack.wait_for("the stream's /metrics", lambda: _text(stack.metrics))
    serve_page = stack.wait_for("serve's /metrics", lambda: _text(f"{stack.api}/metrics"))
    used = dashboard_series()
    stream_names = metrics_names.exposed(stream_page)
    serve_names = metrics_names.exposed(serve_page)
    for series in used:
        where = (
            stream_names if metrics_names.family(series) in metrics_names.STREAM else serve_names
        )
        assert series in where, series
    events_in = [
        line for line in stream_page.splitlines() if line.startswith("backbeat_events_in_total")
    ]
    assert events_in, stream_page[:2000]
    assert float(events_in[0].split()[-1]) > 0


def _text(url: str) -> str | None:
    got = _get(url)
    return got[1].decode() if got and got[0] == 200 else None
