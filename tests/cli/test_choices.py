"""Parts chosen by name on the command line: the store by ``--store``, result sinks by
``--sink``, each written exactly once; an unknown name, an unknown scheme or a missing extra
is one line naming the choices or what to install, and exit code 1.

Next: ``backbeat.wiring.pipeline`` (``sink_specs``, ``assemble``), ``backbeat.plugins``.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from tests.cli.test_cli import _run, events  # noqa: F401 - the module's simulated hour
from tests.support.stores import all_metrics


def _rows(path: Path) -> list[tuple[str, ...]]:
    with path.open(newline="") as fh:
        return [tuple(r) for r in csv.reader(fh)][1:]


def test_stream_with_the_csv_sink_writes_store_and_file_once_even_run_twice(
    events: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    store, out = tmp_path / "store", tmp_path / "results.csv"
    once = ("--json", "stream", "--input", str(events), "--store", str(store),
            "--sink", "csv", "--csv", str(out), "--batch-size", "3000")  # fmt: skip
    code, text = _run(*once)
    assert code == 0, text
    first = json.loads(text)
    metrics, rows = all_metrics(store), _rows(out)
    assert first["accepted"] > 1000
    assert rows, "no final window written"
    code, text = _run(*once)  # the same input again: nothing new, nothing doubled
    assert code == 0, text
    assert json.loads(text)["events_in"] == 0
    assert all_metrics(store) == metrics
    assert _rows(out) == rows
    assert not [k for k, n in Counter(r[:3] for r in rows).items() if n > 1]
    plays = {(r["window_start"], r["genre"]): r["plays"] for r in metrics["genre_minute"]}
    for window_start, _, genre, count in rows:
        assert str(plays[(_ms(window_start), genre)]) == count


def _ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--sink", "iceberg"),
            "unknown sink 'iceberg': choose one of csv, mongo, kafka-dlq, lake",
        ),
        (("--sink", "lake"), "the lake sink needs a location: --lake FOLDER|s3://bucket/prefix"),
        (("--lake", "l", "--sink-option", "lake.endpoint=http://h:1"), "needs an s3:// lake"),
        (("--sink", "csv"), "the csv sink needs a file: --csv FILE"),
        (("--sink-option", "csv.x=1", "--csv", "r.csv"), "the csv sink takes no options"),
        (("--sink-option", "nope"), "--sink-option 'nope': write it as NAME.KEY=VALUE"),
        (("--engine", "flink"), "unknown engine 'flink': choose one of embedded, spark"),
        (("--master", "local[2]"), "--master: only with --engine spark"),
        (("--spark-conf", "a=b"), "--spark-conf: only with --engine spark"),
        (("--engine", "spark", "--trigger", "soon"), "--trigger 'soon': give an interval"),
        (("--engine", "spark", "--spark-conf", "nokey"), "--spark-conf 'nokey': write it as"),
        (("--sink", "kafka-dlq"), "the kafka-dlq sink needs a Kafka cluster"),
    ],
)
def test_a_bad_choice_is_one_line_naming_the_choices(
    args: tuple[str, ...],
    message: str,
    events: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    code, text = _run("stream", "--input", str(events), "--store", str(tmp_path / "s"), *args)
    assert code == 1, text
    assert message in " ".join(text.split())
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) <= 2  # one message (rich may wrap it once)


@pytest.mark.parametrize("command", ["stream", "query"])
def test_an_unknown_store_scheme_is_one_line_and_creates_nothing(
    command: str,
    events: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ("--input", str(events)) if command == "stream" else ("top-songs",)
    code, text = _run(command, *args, "--store", "redis://db.example/backbeat")
    assert code == 1, text
    assert "unknown store 'redis'://" in " ".join(text.split())
    shown = "give a folder (the embedded DuckDB store) or a URL of: duckdb://, postgresql://"
    assert shown in " ".join(text.split())
    assert list(tmp_path.iterdir()) == [], "a folder named after the URL was created"


def test_a_sink_whose_extra_is_missing_names_the_extra(
    events: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Without confluent-kafka (hidden from a child interpreter) the kafka-dlq sink says which
    extra to install, in one line."""
    script = (
        "import sys; sys.modules['confluent_kafka'] = None\n"
        "import importlib.util\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'confluent_kafka' else real(n, *a)\n"
        "from backbeat.commands import main\n"
        f"main(['stream', '--input', {str(events)!r}, '--store', {str(tmp_path / 's')!r}, "
        "'--sink', 'kafka-dlq'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "the kafka-dlq sink needs: pip install 'backbeat[kafka]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_store_killed_before_its_first_commit_is_one_clear_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    duckdb.connect(str(store / "backbeat.duckdb")).close()  # created, never written
    code, text = _run("query", "top-songs", "--store", str(store))
    assert code == 1, text
    assert "holds no results yet" in " ".join(text.split())
    assert "internal error" not in text
