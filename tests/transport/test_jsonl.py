"""JSONL inputs as a user meets them: which paths ``backbeat stream`` takes, and what it says
about the others (a device, a pipe, a file not named after a topic); the source itself, used as
a library, still reads a file of an unknown topic into dead letters.

Next: ``backbeat.transport.jsonl``, ``tests/cli/test_cli.py`` (the same errors, as one line).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backbeat.engine.base import EngineSettings
from backbeat.engine.pipeline import Pipeline
from backbeat.errors import SourceError
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.transport.jsonl import JsonlSource, discover, named_after_topics
from tests.support.eventlog import Trouble, generate, write_log
from tests.support.harness import dead_letter_problems, metric_mismatches
from tests.support.oracle import compute

TOPIC_FILES = ("listen_events.jsonl", "auth_events.jsonl")


def _files(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"{}\n")
    return [folder / name for name in names]


def test_a_device_is_not_a_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"'/dev/null' is not a regular file \(a device or a"):
        discover([Path("/dev/null")])
    pipe = tmp_path / "listen_events.jsonl"
    os.mkfifo(pipe)
    with pytest.raises(SourceError, match="is not a regular file"):
        discover([pipe])
    with pytest.raises(SourceError, match="does not exist"):
        discover([tmp_path / "nope.jsonl"])


def test_files_and_folders_are_found_in_order(tmp_path: Path) -> None:
    files = _files(tmp_path / "in", *TOPIC_FILES)
    _files(tmp_path / "in", "notes.txt")
    one = _files(tmp_path / "one", "page_view_events.jsonl")
    assert discover([tmp_path / "in", *one]) == sorted(files) + one
    assert named_after_topics(files) == files


@pytest.mark.parametrize(
    "name", ["spotify_history.csv", "StreamingHistory0.json", "events.jsonl", "listen.jsonl"]
)
def test_a_file_not_named_after_a_topic_is_refused_saying_how_to_name_it(
    tmp_path: Path, name: str
) -> None:
    files = _files(tmp_path, TOPIC_FILES[0], name)
    with pytest.raises(SourceError) as refused:
        named_after_topics(files)
    message = str(refused.value)
    assert message.startswith(f"{str(tmp_path / name)!r} is not named after a topic: ")
    assert "(listen_events.jsonl, page_view_events.jsonl, auth_events.jsonl, " in message
    assert "`backbeat replay FILE --format FORMAT`" in message
    assert "\n" not in message


def test_several_misnamed_files_are_named_together(tmp_path: Path) -> None:
    files = _files(tmp_path, *(f"part{i}.jsonl" for i in range(5)))
    with pytest.raises(SourceError, match=r"'.*part2.jsonl' and 2 more are not named after"):
        named_after_topics(files)


def test_a_folder_without_jsonl_says_where_exports_go(tmp_path: Path) -> None:
    _files(tmp_path, "spotify_history.csv")
    with pytest.raises(SourceError, match=r"no \.jsonl files in .*backbeat replay FILE"):
        discover([tmp_path])


def test_the_source_itself_still_dead_letters_an_unknown_topic(tmp_path: Path) -> None:
    """As a library, the source reads any file it is given: a file of a topic backbeat does
    not know becomes ``unknown_topic`` dead letters, once each, and the rest flows on."""
    log = write_log(
        tmp_path / "in", generate(6, 8, seed=3), seed=4, trouble=Trouble(malformed=0, bogus_lines=7)
    )
    assert log.counts("malformed") == {"unknown_topic": 7}
    expected = compute(log.directory, log.malformed_offsets())
    store_dir = tmp_path / "store"
    store = DuckDBStore.at(str(store_dir))
    pipeline = Pipeline(
        JsonlSource(discover([log.directory])), store, settings=EngineSettings(max_batch_events=50)
    )
    try:
        report = pipeline.run()
    finally:
        pipeline.close()
        store.close()
    assert report.dead == 7 + sum(len(v) for v in expected.late.values())
    problems = metric_mismatches(store_dir, expected) + dead_letter_problems(
        store_dir, log, expected
    )
    assert not problems, "\n".join(problems)
