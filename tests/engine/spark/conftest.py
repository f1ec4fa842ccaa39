"""One SparkSession (``local[2]``) for every Spark test (this package: made once, shut down
with its JVM when the package is done), one standalone cluster on loopback (a master and a worker from the PySpark package), and a way to run the
Spark engine in this process over JSONL files or Kafka into a store.

Spark needs PySpark (``backbeat[spark]``) and Java: without them these tests skip, saying
which is missing.

Next: ``test_differential.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backbeat.engine.base import EngineSettings, RunReport
from backbeat.sinks.base import SinkSpec
from backbeat.transport.base import Source
from tests.support.eventlog import EventLog, generate, write_log
from tests.support.oracle import Expected, compute


@pytest.fixture(scope="package")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="the Spark tests need backbeat[spark] (PySpark)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("the Spark tests need a Java 17+ runtime (java on PATH or JAVA_HOME)")
    from pyspark.sql import SparkSession

    from backbeat.engine.spark.session import DEFAULTS

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master("local[2]")
    for key, value in {**DEFAULTS, "spark.sql.shuffle.partitions": "4",
                       "spark.ui.enabled": "false"}.items():  # fmt: skip
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    _shut_down(session)


def _shut_down(session: Any) -> None:
    """Stop the session, and the JVM and the callback server ``foreachBatch`` started: a
    process that forks later (the engine's prefetching worker, in other tests) must not carry
    their threads into the child, where they crash it."""
    from pyspark import SparkContext

    session.stop()
    gateway = SparkContext._gateway
    if gateway is not None:
        process = getattr(gateway, "proc", None)
        if process is not None:  # the JVM first: closing its connections then never waits
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
        gateway.shutdown(raise_exception=False)
        SparkContext._gateway = None
        SparkContext._jvm = None


@pytest.fixture(scope="session")
def spark_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[EventLog, Expected]:
    """One log with every kind of trouble (duplicates, late, malformed) and its oracle, for
    every Spark test."""
    events = write_log(tmp_path_factory.mktemp("spark-log") / "in", generate(200, 30, seed=81),
                       seed=82)  # fmt: skip
    return events, compute(events.directory, events.malformed_offsets())


def run_spark(
    source: Source,
    store: Path,
    checkpoint: Path,
    batch: int,
    sinks: tuple[SinkSpec, ...] = (),
    **options: str,
) -> RunReport:
    """One bounded run of the Spark engine (on the session's SparkSession) into ``store``
    and ``sinks``."""
    from backbeat import wiring

    settings = EngineSettings(
        max_batch_events=batch, options={"checkpoint": str(checkpoint), **options}
    )
    plan = wiring.RunPlan(store=str(store), sinks=sinks, engine="spark", settings=settings)
    with wiring.assemble(source, plan) as run:
        return run.engine.run(timeout=600)


@dataclass(frozen=True)
class Cluster:
    """A standalone Spark cluster on loopback: its master URL and the settings a driver
    needs to run backbeat's Python on its executors."""

    master: str
    conf: tuple[str, ...]


def _spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def _start(
    args: list[str], log: Path, ready: bytes, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """A Spark daemon in the foreground, once its log says ``ready`` (fails the test if it
    ends first or takes more than two minutes)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while ready not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"{args[1]} did not start:\n{log.read_bytes()[-2000:].decode()}")
        time.sleep(0.1)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="package")
def spark_cluster(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A master and one worker (2 cores, 2 GiB) from the PySpark package, on 127.0.0.1."""
    from tests.support.kafka import free_port

    folder = tmp_path_factory.mktemp("spark-cluster")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_WORKER_DIR": str(folder / "work"), "SPARK_LOG_DIR": str(folder)}  # fmt: skip
    port = free_port()
    master = _start(
        [str(_spark_class()), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(free_port())],
        folder / "master.log", b"I have been elected leader", env,
    )  # fmt: skip
    try:
        worker = _start(
            [str(_spark_class()), "org.apache.spark.deploy.worker.Worker",
             f"spark://127.0.0.1:{port}", "--host", "127.0.0.1", "--cores", "2", "--memory",
             "2g", "--webui-port", str(free_port()), "--work-dir", str(folder / "work")],
            folder / "worker.log", b"Successfully registered with master", env,
        )  # fmt: skip
        try:
            yield Cluster(
                f"spark://127.0.0.1:{port}",
                (f"spark.pyspark.python={sys.executable}", "spark.driver.host=127.0.0.1",
                 "spark.executor.memory=1g", "spark.cores.max=2"),
            )  # fmt: skip
        finally:
            _stop(worker)
    finally:
        _stop(master)
