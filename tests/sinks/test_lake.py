"""The Parquet lake sink end to end: ``backbeat stream --lake`` over a small JSONL log (with
duplicates and malformed lines), killed with SIGKILL after a commit and run again, onto a
local folder and onto an S3-compatible server; then the lake, read back with
``pyarrow.dataset`` and Hive partitioning, must hold every valid event exactly once, in the
partition of its event hour, in files named after batches, with nothing left staged.

Next: ``test_suite.py`` (every crash of the sink contract), ``backbeat/sinks/lake/sink.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pytest

from backbeat.errors import ConfigError
from backbeat.events.schema import Topic
from backbeat.sinks.base import SinkSpec
from backbeat.sinks.registry import open_sinks
from tests.support.eventlog import Trouble, generate, write_log
from tests.support.harness import STREAM_CLI
from tests.support.lake import hour_of, lake_problems
from tests.support.malformed import STANDARD
from tests.support.s3 import s3_filesystem

BATCH = 150
TROUBLE = Trouble(exact_dups=4, key_dups=0, late=0, late_allowed=0, late_dups=0,
                  malformed=len(STANDARD))  # fmt: skip
"""Exact duplicates and malformed lines only: the valid events are exactly the generated ones."""


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Topic, pa.Table]]:
    tables = generate(24, 120, seed=41)  # from 22:13 UTC, over midnight
    folder = tmp_path_factory.mktemp("lake-log")
    return write_log(folder / "in", tables, seed=42, trouble=TROUBLE).directory, tables


def _stream(log: Path, store: Path, lake: str, *extra: str) -> list[str]:
    head, rest = STREAM_CLI[:-2], STREAM_CLI[-2:]
    return [*head, "--log-level", "INFO", *rest, "--input", str(log), "--store", str(store),
            "--batch-size", str(BATCH), "--lake", lake, *extra]  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}


def _killed_then_finished(command: list[str]) -> str:
    """Run ``command``, SIGKILL it once batch 3 is committed, run it again to the end; the
    second run's stderr."""
    first = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             text=True, env=_env())  # fmt: skip
    assert first.stderr is not None
    seen = []
    for line in first.stderr:
        seen.append(line)
        if "committed batch 3:" in line:
            first.kill()
            break
    first.wait(timeout=60)
    first.stderr.close()
    assert first.returncode == -9, "the run ended before batch 3:\n" + "".join(seen[-5:])
    second = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120,
                            check=False)  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads(second.stdout.splitlines()[-1])["stopped_by"] == "exhausted"
    return "".join(seen) + second.stderr


def _hours(tables: Mapping[Topic, pa.Table]) -> set[tuple[int, int, int, int]]:
    return {hour_of(ms) for t in tables.values() for ms in t.column("ts").to_pylist()}


def test_a_local_lake_holds_every_valid_event_once_by_event_hour_after_a_kill(
    log: tuple[Path, dict[Topic, pa.Table]], tmp_path: Path
) -> None:
    directory, tables = log
    assert len({h[:3] for h in _hours(tables)}) == 2, "the log should cross midnight"
    lake = tmp_path / "lake"
    _killed_then_finished(_stream(directory, tmp_path / "store", str(lake)))
    assert lake_problems(lake, None, [tables]) == []
    days = {p.name for p in (lake / "listen_events" / "year=2023" / "month=11").iterdir()}
    assert days == {"day=14", "day=15"}


@pytest.mark.integration
def test_an_s3_lake_holds_the_same_and_never_shows_the_credentials(
    log: tuple[Path, dict[Topic, pa.Table]], tmp_path: Path, s3_bucket: tuple[str, str]
) -> None:
    directory, tables = log
    endpoint, bucket = s3_bucket
    command = _stream(directory, tmp_path / "store", f"s3://{bucket}/raw",
                      "--sink-option", f"lake.endpoint={endpoint}")  # fmt: skip
    stderr = _killed_then_finished(command)
    assert lake_problems(f"{bucket}/raw", s3_filesystem(endpoint), [tables]) == []
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in stderr


def test_bad_lake_choices_are_one_line_errors(tmp_path: Path) -> None:
    cases = [
        (SinkSpec("lake"), "needs a location"),
        (SinkSpec("lake", str(tmp_path), {"bucket": "x"}), "no option bucket"),
        (SinkSpec("lake", str(tmp_path), {"endpoint": "http://h:1"}), "needs an s3:// lake"),
        (SinkSpec("lake", "s3:///prefix"), "name a bucket"),
    ]
    for spec, message in cases:
        with pytest.raises(ConfigError, match=message) as caught:
            open_sinks([spec])
        assert "\n" not in str(caught.value)
