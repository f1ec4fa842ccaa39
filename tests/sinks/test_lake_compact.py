"""``backbeat batch compact-lake`` on lakes written by the real lake sink (a local folder and
the S3 test server): one file per topic-hour named after its batch range, every event exactly
once before and after; idempotent; a crash between the move and the deletes, a stream adding
batches to a compacted hour, staged and half-merged orphans, and the command SIGKILLed mid-run
then run again.

Next: ``backbeat/sinks/lake/compact.py``, ``tests/sinks/test_lake.py`` (the sink itself).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from backbeat.commands import app as cli
from backbeat.errors import StoreError
from backbeat.events.schema import Topic, arrow_schema
from backbeat.sinks.base import DEAD_LETTER_SCHEMA, SinkBatch
from backbeat.sinks.lake import compact
from backbeat.sinks.lake.compact import CompactReport, compact_lake
from backbeat.sinks.lake.layout import PENDING, Lake, batch_range, part_name
from backbeat.sinks.lake.sink import LakeSink
from tests.support.eventlog import generate
from tests.support.lake import lake_problems
from tests.support.s3 import s3_filesystem

LAKE_CLI = (sys.executable, "-X", "faulthandler", "-m", "backbeat", "--json")
Events = dict[Topic, pa.Table]


def _events(sessions: int, minutes: int, seed: int) -> Events:
    """A valid log's events in contract columns, rows shuffled so every batch touches most
    hours."""
    rng = np.random.default_rng(seed)
    tables = generate(sessions, minutes, seed=seed)
    return {
        t: tb.select(arrow_schema(t).names).take(rng.permutation(tb.num_rows))
        for t, tb in tables.items()
    }


def _cut(events: Events, count: int) -> list[Events]:
    """``events`` cut into ``count`` batches."""
    batches: list[Events] = []
    for i in range(count):
        batch = {}
        for topic, table in events.items():
            lo, hi = table.num_rows * i // count, table.num_rows * (i + 1) // count
            if hi > lo:
                batch[topic] = table.slice(lo, hi - lo)
        batches.append(batch)
    return batches


def _stream(url: str, options: Mapping[str, str], batches: Sequence[Events], first: int) -> None:
    """What a stream does to the lake: each batch staged, committed as ``first``, ``first+1``...
    and published."""
    sink = LakeSink(url, options)
    for batch_id, events in enumerate(batches, start=first):
        batch = SinkBatch({}, events, DEAD_LETTER_SCHEMA.empty_table())
        sink.begin(batch)
        sink.write(batch_id, {}, events, batch.dead_letters)


def _read(lake: Lake) -> Events:
    """Every event a reader sees (live files only), by topic, ordered by event id."""
    return {
        t: pa.concat_tables([lake.read_hour(t, h) for h in hours]).sort_by("eventId")
        for t in Topic
        if (hours := lake.hours(t))
    }


def _files(lake: Lake) -> dict[tuple[Topic, int], list[str]]:
    """Every file of every topic-hour, hidden and covered ones included."""
    return {
        (t, h): sorted(i.base_name for i in lake.listing(lake.folder(t, h)))
        for t in Topic
        for h in lake.hours(t)
    }


def _same(got: Events, want: Events) -> None:
    assert got.keys() == want.keys()
    for topic in want:
        assert got[topic].equals(want[topic]), topic


@pytest.fixture(scope="module")
def events() -> Events:
    return _events(sessions=40, minutes=300, seed=7)  # about 6 hours


def _compacted_as_expected(lake: Lake, before: dict[tuple[Topic, int], list[str]]) -> None:
    """One file per topic-hour, named after the batches the hour held."""
    after = _files(lake)
    assert after.keys() == before.keys()
    for key, names in before.items():
        ranges = [r for n in names if (r := batch_range(n))]
        assert after[key] == [part_name(min(r[0] for r in ranges), max(r[1] for r in ranges))]


def test_each_topic_hour_becomes_one_file_with_the_same_events(
    events: Events, tmp_path: Path
) -> None:
    url = str(tmp_path / "lake")
    _stream(url, {}, _cut(events, 4), first=1)
    lake = Lake.open(url)
    before, seen = _files(lake), _read(lake)
    assert max(len(n) for n in before.values()) == 4
    report = compact_lake(lake)
    _compacted_as_expected(lake, before)
    _same(_read(lake), seen)
    assert lake_problems(url, None, [events]) == []
    multi = [n for n in before.values() if len(n) > 1]
    assert (report.hours, report.files_after) == (len(multi), len(multi))
    assert (report.files_before, report.orphans) == (sum(len(n) for n in multi), 0)
    assert report.bytes_before > report.bytes_after > 0
    assert compact_lake(lake) == CompactReport()  # twice: no change
    _compacted_as_expected(lake, before)


def test_a_crash_between_the_move_and_the_deletes_shows_each_event_once(
    events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(tmp_path / "lake")
    _stream(url, {}, _cut(events, 3), first=10)
    lake = Lake.open(url)
    before, seen = _files(lake), _read(lake)

    def killed(lake: Lake, paths: list[str]) -> None:
        if paths:
            raise StoreError("killed before the deletes")

    with monkeypatch.context() as patched:
        patched.setattr(compact, "_delete_files", killed)
        with pytest.raises(StoreError, match="killed"):
            compact_lake(lake)
    crashed = {k: names for k, names in _files(lake).items() if names != before[k]}
    assert len(crashed) == 1
    [(key, names)] = crashed.items()
    assert len(names) == len(before[key]) + 1  # the merged file beside the files it covers
    _same(_read(lake), seen)
    report = compact_lake(lake)
    assert report.orphans == len(before[key])
    _compacted_as_expected(lake, before)
    _same(_read(lake), seen)


def test_batches_written_into_a_compacted_hour_are_merged_next_time(
    events: Events, tmp_path: Path
) -> None:
    url = str(tmp_path / "lake")
    batches = _cut(events, 6)
    _stream(url, {}, batches[:3], first=1)
    lake = Lake.open(url)
    compact_lake(lake)
    _stream(url, {}, batches[3:], first=4)
    before, seen = _files(lake), _read(lake)
    grown = [k for k, n in before.items() if n[0] == part_name(1, 3) and len(n) > 1]
    assert grown
    compact_lake(lake)
    _compacted_as_expected(lake, before)
    assert all(_files(lake)[k][0].startswith("part-000000000001-0000000000") for k in grown)
    _same(_read(lake), seen)
    assert lake_problems(url, None, [events]) == []


def test_compacting_while_a_stream_writes_loses_and_doubles_nothing(
    events: Events, tmp_path: Path
) -> None:
    url = str(tmp_path / "lake")
    lake = Lake.open(url)
    done = threading.Event()
    failures: list[BaseException] = []

    def stream() -> None:
        try:
            _stream(url, {}, _cut(events, 12), first=1)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    writer = threading.Thread(target=stream)
    writer.start()
    runs = 0
    while not done.is_set() or runs == 0:
        compact_lake(lake)
        runs += 1
    writer.join()
    assert not failures
    compact_lake(lake)
    assert all(len(names) == 1 for names in _files(lake).values())
    assert lake_problems(url, None, [events]) == []


def _orphans(root: Path, lake: Lake, old: float) -> list[Path]:
    """An old and a fresh staged folder and hidden merge file; the old ones last changed at
    ``old`` (epoch seconds)."""
    made = []
    folder = Path(lake.folder(Topic.LISTEN, lake.hours(Topic.LISTEN)[0]))
    for age in ("old", "fresh"):
        staged = root / PENDING / f"token-{age}"
        staged.mkdir(parents=True)
        (staged / "listen_events.1.parquet").write_bytes(b"x")
        hidden = folder / f"{compact.HIDDEN}{age}-part-000000000001-000000000002.parquet"
        hidden.write_bytes(b"x")
        made += [staged, hidden]
    for path in made[:2]:
        for each in [path, *path.glob("*")]:
            os.utime(each, (old, old))
    return made


def test_old_orphans_are_removed_and_fresh_ones_kept(events: Events, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _stream(str(root), {}, _cut(events, 1), first=1)
    lake = Lake.open(str(root))
    old_staged, old_hidden, fresh_staged, fresh_hidden = _orphans(root, lake, time.time() - 7200)
    report = compact_lake(lake)
    assert (report.orphans, report.hours) == (2, 0)
    assert [p.exists() for p in (old_staged, old_hidden)] == [False, False]
    assert [p.exists() for p in (fresh_staged, fresh_hidden)] == [True, True]


@pytest.mark.integration
def test_an_s3_lake_compacts_the_same(
    s3_bucket: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, bucket = s3_bucket
    url, options = f"s3://{bucket}/raw", {"endpoint": endpoint}
    events = _events(sessions=16, minutes=150, seed=3)  # fewer hours: S3 is slower
    batches = _cut(events, 3)
    _stream(url, options, batches[:2], first=1)
    lake = Lake.open(url, options)
    staged = f"{lake.root}/{PENDING}/token-abandoned/listen_events.1.parquet"
    with lake.filesystem.open_output_stream(staged) as out:
        out.write(b"x")
    assert compact_lake(lake, orphan_age=compact.ORPHAN_AGE).orphans == 0  # young: kept
    _stream(url, options, batches[2:], first=3)
    before, seen = _files(lake), _read(lake)
    with monkeypatch.context() as patched:  # (undo() would also drop the credentials)
        patched.setattr(compact, "_delete_files", lambda lake, paths: None)
        compact_lake(lake, topics=[Topic.LISTEN])  # moved, nothing deleted
    _same(_read(lake), seen)
    runner = CliRunner()
    result = runner.invoke(cli, ["--json", "batch", "compact-lake", "--lake", url,
                                 "--lake-option", f"endpoint={endpoint}",
                                 "--orphan-age", "0s"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["orphans"] > 1  # the abandoned staged folder and the covered files
    assert report["hours"] > 0
    _compacted_as_expected(lake, before)
    _same(_read(lake), seen)
    assert lake_problems(f"{bucket}/raw", s3_filesystem(endpoint), [events]) == []


def test_the_command_killed_mid_run_then_run_again_leaves_each_event_once(
    tmp_path: Path,
) -> None:
    events = _events(sessions=60, minutes=10 * 60, seed=11)
    url = str(tmp_path / "lake")
    _stream(url, {}, _cut(events, 3), first=1)
    lake = Lake.open(url)
    before, seen = _files(lake), _read(lake)
    merges = sum(len(names) > 1 for names in before.values())
    assert merges >= 40
    command = [*LAKE_CLI, "--log-level", "INFO", "batch", "compact-lake", "--lake", url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    kill_after = random.Random(5).randint(3, 12)
    # A one-page pipe: a log line is over 150 bytes, so the run blocks less than 28 merges
    # ahead of this reader and cannot finish before the kill.
    first = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             text=True, env=env, pipesize=4096)  # fmt: skip
    assert first.stderr is not None
    merged = 0
    for line in first.stderr:
        merged += " merged " in line
        if merged == kill_after:
            first.kill()
            break
    first.wait(timeout=60)
    first.stderr.close()
    assert first.returncode == -9, f"the run ended after {merged} of {merges} merges"
    _same(_read(lake), seen)
    again = subprocess.run([*command, "--orphan-age", "0s"], capture_output=True, text=True,
                           env=env, timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    _compacted_as_expected(lake, before)
    _same(_read(lake), seen)
    assert lake_problems(url, None, [events]) == []


def test_bad_choices_are_one_line_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = [
        (["--orphan-age", "soon"], "--orphan-age 'soon'"),
        (["--year", "2026"], "give all of --year"),
        (["--year", "2026", "--month", "2", "--day", "30", "--hour", "1"], "day is out of range"),
        (["--lake-option", "endpoint"], "write it as KEY=VALUE"),
        (["--lake-option", "bucket=x"], "no option bucket"),
        (["--topic", "nope"], "unknown topic"),
    ]
    for extra, message in cases:
        result = runner.invoke(cli, ["batch", "compact-lake", "--lake", str(tmp_path), *extra])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert message in lines[0], result.output


def test_one_hour_of_one_topic(events: Events, tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    _stream(url, {}, _cut(events, 2), first=1)
    lake = Lake.open(url)
    hour = lake.hours(Topic.LISTEN)[1]
    before = _files(lake)
    runner = CliRunner()
    when = time.gmtime(hour * 3600)
    result = runner.invoke(cli, ["--json", "batch", "compact-lake", "--lake", url,
                                 "--topic", "listen_events", "--year", str(when.tm_year),
                                 "--month", str(when.tm_mon), "--day", str(when.tm_mday),
                                 "--hour", str(when.tm_hour)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hours"] == 1
    after = _files(lake)
    assert after[Topic.LISTEN, hour] == ["part-000000000001-000000000002.parquet"]
    assert {k: v for k, v in after.items() if k != (Topic.LISTEN, hour)} == {
        k: v for k, v in before.items() if k != (Topic.LISTEN, hour)
    }
