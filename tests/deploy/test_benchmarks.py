"""The benchmarks still run: each one, at a toy size, as ``make bench`` would start it.

Speed is not checked here (benchmarks measure it); this only keeps the scripts in step with the
code they drive, which mypy does not check.

Next: ``benchmarks/`` (the scripts), ``docs/performance.md`` (their figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize("mode", ["embedded", "embedded-1thread", "engine", "simulator"])
def test_the_embedded_benchmark_runs_each_mode(mode: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_embedded.py"), "--child", mode,
         "--sizes", "20000", "--users", "300"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["events"] >= 20_000
    assert result["events_per_s"] > 0


@pytest.mark.integration
def test_the_kafka_benchmark_runs_every_path(kafka_servers: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_kafka.py"), "--events", "20000",
         "--users", "300", "--rounds", "1", "--bootstrap-servers", kafka_servers,
         "--json", str(tmp_path / "kafka.json")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (tmp_path / "kafka.json").exists()


@pytest.mark.integration
def test_the_replay_benchmark_runs_to_jsonl_and_kafka(kafka_servers: str) -> None:
    sample = BENCHMARKS.parents[1] / "shared/data/spotify/Streaming_History_Audio_sample.json"
    if not sample.exists():
        pytest.skip(f"the shared test data is not at {sample.parent.parent}")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_replay.py"), "--rows", "5000", "--rounds", "1",
         "--bootstrap-servers", kafka_servers],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "rows/s to JSONL" in done.stdout
    assert "rows/s to Kafka" in done.stdout


@pytest.mark.integration
def test_the_stores_benchmark_runs_every_store_and_the_api(tmp_path: Path) -> None:
    from tests.support.mongo import secantus_binary
    from tests.support.postgres import missing_server

    why = missing_server()
    if why:
        pytest.skip(why)
    if secantus_binary() is None:
        pytest.skip("no MongoDB server: secantusdb (secantusd-py) is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_BENCH_")}
    env["COLUMNS"] = "250"  # the tables unwrapped
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_stores.py"), "--events", "20000",
         "--users", "300", "--batch-size", "1000", "--rounds", "1", "--mongo-events", "300",
         "--serve-seconds", "2", "--serve-warmup", "2", "--live-users", "1000",
         "--rate", "100", "--connections", "4", "--json", str(tmp_path / "stores.json")],
        capture_output=True, text=True, timeout=900, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    for title in ("events per second", "where the PostgreSQL store's commit goes",
                  "/api/top-songs served from PostgreSQL"):  # fmt: skip
        assert title in done.stdout
    figures = json.loads((tmp_path / "stores.json").read_text())
    assert {r["variant"] for r in figures["results"]} == {"duckdb", "postgresql", "duckdb + mongo"}
    assert [p["phase"] for p in figures["serve"]] == ["idle", "ingest"]
    assert all(p["requests"] > 0 for p in figures["serve"])


@pytest.mark.integration
def test_the_lake_benchmark_runs_the_lake_and_the_warehouse(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    env["COLUMNS"] = "250"  # the tables unwrapped
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_lake.py"), "--sessions", "100",
         "--minutes", "20", "--batch-size", "1000", "--json", str(tmp_path / "lake.json")],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    for title in ("lake write", "compact-lake and the warehouse"):
        assert title in done.stdout
    figures = json.loads((tmp_path / "lake.json").read_text())
    plain, lake = figures["stream"]["stream, no lake"], figures["stream"]["stream --lake"]
    assert plain["events_in"] == lake["events_in"] == figures["events"]
    assert figures["lake"]["bytes"] > 0
    assert figures["compact_lake"]["lake_after"]["max_files_per_hour"] == 1
    warehouse = figures["warehouse"]
    assert warehouse["rows_loaded"] == figures["events"]
    assert warehouse["gold_rows"] == warehouse["staged_listens"]  # no duplicates injected
    assert warehouse["catch_up_loaded"] == 0
    assert warehouse["files_after_tidy"]["gold"]["max"] == 1


def test_the_recommendation_benchmark_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_recommend.py"), "--users", "200", "--days", "2",
         "--seconds", "2", "--rates", "100", "--json", str(tmp_path / "recommend.json")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    figures = json.loads((tmp_path / "recommend.json").read_text())
    assert figures["train"]["listeners"] > 0
    assert figures["evaluate"]["listeners"] > 0
    assert figures["engine_on"]["events_in"] == figures["engine_off"]["events_in"]
    assert figures["serve"][0]["failed"] == 0
