"""The command line: simulate -> stream -> query, one-line errors, and the live demo."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backbeat.commands import app
from backbeat.commands.common import start_from as _start_from
from backbeat.commands.query import printable
from tests.support.demo import demo_terminal

runner = CliRunner()
START, END = "2026-01-05T12:00:00Z", "2026-01-05T13:00:00Z"


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("events")
    code, text = _run(
        "--json", "simulate", "--out", str(out), "--users", "5000", "--seed", "3",
        "--start", START, "--end", END,
    )  # fmt: skip
    assert code == 0, text
    assert json.loads(text)["events"] > 1000
    return out


def test_simulate_same_seed_gives_identical_files(events: Path, tmp_path: Path) -> None:
    code, _ = _run(
        "--json", "simulate", "--out", str(tmp_path), "--users", "5000", "--seed", "3",
        "--start", START, "--end", END,
    )  # fmt: skip
    assert code == 0
    for name in ("listen_events", "page_view_events", "auth_events", "status_change_events"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (events / f"{name}.jsonl").read_bytes()


def test_stream_then_query_every_view(events: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, text = _run("--json", "stream", "--input", str(events), "--store", str(store),
                      "--csv", str(tmp_path / "results.csv"))  # fmt: skip
    assert code == 0, text
    report = json.loads(text)
    assert report["stopped_by"] == "exhausted"
    assert report["accepted"] == report["events_in"] > 1000
    for name in ("top-songs", "top-artists", "genre-windows", "active-users"):
        code, text = _run("--json", "query", name, "--store", str(store), "--limit", "5")
        assert code == 0, (name, text)
        assert 0 < len(json.loads(text)) <= 5
    code, text = _run("--json", "query", "dead-letters", "--store", str(store), "--limit", "5")
    assert code == 0, text
    assert json.loads(text) == {"counts": [], "latest": []}
    code, text = _run("--json", "query", "engagement", "--by", "platform", "--store", str(store))
    assert code == 0
    assert {r["platform"] for r in json.loads(text)} <= {
        "ios",
        "android",
        "web",
        "desktop",
        "tv",
        "car",
        "speaker",
    }
    code, text = _run("--json", "query", "top-skipped", "--store", str(store), "--by", "artist",
                      "--min-plays", "5", "--limit", "7")  # fmt: skip
    assert code == 0, text
    skipped = json.loads(text)
    assert 0 < len(skipped) <= 7
    assert all(r["listens"] >= 5 for r in skipped)
    rates = [r["skip_rate"] for r in skipped]
    assert rates == sorted(rates, reverse=True)
    code, text = _run("query", "top-skipped", "--store", str(store), "--min-plays", "3")
    assert code == 0, text
    assert text.split()[0] == "top-skipped"  # the table's title, then its rows
    assert "│" in text
    code, text = _run("--json", "query", "top-songs", "--store", str(store),
                      "--from", "2026-01-05T12:10:00Z", "--to", "2026-01-05T12:11:00Z")  # fmt: skip
    assert code == 0
    assert sum(r["plays"] for r in json.loads(text)) > 0
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0] == "window_start,window_end,genre,count"
    assert len(lines) > 10
    # Running again resumes at the end: nothing new, nothing doubled.
    code, text = _run("--json", "stream", "--input", str(events), "--store", str(store))
    assert code == 0
    assert json.loads(text)["events_in"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("stream", "--input", "/nonexistent/dir"), "does not exist"),
        (("stream", "--input", "/dev/null"), "'/dev/null' is not a regular file"),
        (
            ("stream", "--input", "{events}/listen_events.jsonl", "{csv}"),
            "spotify_history.csv' is not named after a topic: name each file after the topic",
        ),
        (("stream", "--input", "{csv}"), "goes through `backbeat replay FILE --format FORMAT`"),
        (("stream", "--input", "{bogus}"), "bogus_events.jsonl' is not named after a topic"),
        (("query", "top-songs", "--store", "/nonexistent/store"), "no store in"),
        (("simulate", "--start", "yesterday"), "is not an ISO time"),
        (("simulate", "--config", "/nonexistent.json"), "nonexistent.json"),
        (("query", "engagement", "--by", "shoe", "--store", "{store}"), "--by 'shoe'"),
        (("query", "top-skipped", "--by", "genre", "--store", "{store}"), "--by 'genre'"),
        (
            ("stream", "--bootstrap-servers", "127.0.0.1:1", "--from", "yesterday"),
            "--from 'yesterday'",
        ),
        (
            ("stream", "--bootstrap-servers", "127.0.0.1:1", "--group", "g", "--serve"),
            "--serve needs the store to itself",
        ),
    ],
)
def test_errors_are_one_line_and_exit_1(
    args: tuple[str, ...], message: str, events: Path, tmp_path: Path
) -> None:
    store = tmp_path / "s"
    _run("stream", "--input", str(events), "--store", str(store), "--max-events", "10")
    csv = tmp_path / "spotify_history.csv"  # an export: its lines are not backbeat's events
    csv.write_text("spotify_track_uri,ts,platform\n6potE1lWMqhk4OxmfsoGDk,2023-01-01,ios\n")
    bogus = tmp_path / "bogus"  # a folder with a file of a topic backbeat does not know
    bogus.mkdir()
    (bogus / "bogus_events.jsonl").write_bytes((events / "listen_events.jsonl").read_bytes())
    (bogus / "listen_events.jsonl").write_bytes((events / "listen_events.jsonl").read_bytes())
    names = {"store": store, "events": events, "csv": csv, "bogus": bogus}
    code, text = _run(*(a.format(**names) for a in args))
    assert code == 1
    assert message in " ".join(text.split())
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) <= 2  # one message (rich may wrap it once)


def test_demo_shows_live_numbers_and_exits_0(tmp_path: Path) -> None:
    """The terminal view shows a positive rate and the top lists, and the demo exits 0.
    How soon it does is a benchmark (``benchmarks/bench_demo_start.py``), not a timed test."""
    run = demo_terminal(tmp_path, "--duration", "8", "--users", "20000", "--port", "0")
    assert run.returncode == 0, run.output[-2000:]
    assert run.first_live_s is not None, run.output[-2000:]
    assert b"demo done" in run.output


def test_a_bad_environment_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKBEAT_MAX_BATCH_EVENTS", "0")
    code, text = _run("version")
    assert code == 1
    assert "BACKBEAT_MAX_BATCH_EVENTS=" in text
    assert "Traceback" not in text


ARRIVED = [
    b'{"city": "Ta\xff\xfepa"}',  # not UTF-8
    b"\xff",
    b"\x1b[31mred\x1b[0m caf\xc3\xa9 \xe2\x80\xae",  # ESC, UTF-8 text, a bidi override
    b"[/bold] [red]not markup",
    b'6potE1lWMqhk4OxmfsoGDk,2023-01-01 12:00:00,web player,"Queen"',  # a CSV line
    b'{"ts":\t\t"' + "é".encode() * 3000 + b'"}',  # tabs; longer than the answer (4 KiB)
    b'{"ts": 1767614497010}',
]
SHOWN = [
    '{"city": "Ta\\xff\\xfepa"}',
    "\\xff",
    "\\x1b[31mred\\x1b[0m café \\u202e",
    "[/bold] [red]not markup",
    '6potE1lWMqhk4OxmfsoGDk,2023-01-01 12:00:00,web player,"Queen"',
    '{"ts":\\t\\t"' + "é" * 2043 + "... (6,011 bytes in all)",  # no half "é" at the cut
    '{"ts": 1767614497010}',
]


def test_dead_letters_show_counts_by_reason_and_each_record_as_it_arrived(
    events: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = (events / "auth_events.jsonl").read_bytes()
    (folder / "auth_events.jsonl").write_bytes(b"\n".join(ARRIVED) + b"\n" + good)
    store = str(tmp_path / "store")
    assert _run("stream", "--input", str(folder), "--store", store)[0] == 0
    code, text = _run("--json", "query", "dead-letters", "--store", store, "--limit", "50")
    assert code == 0, text
    shown = json.loads(text)
    assert shown["counts"] == [
        {"topic": "auth_events", "reason": "not_json", "dead_letters": 5},
        {"topic": "auth_events", "reason": "missing_field", "dead_letters": 1},
        {"topic": "auth_events", "reason": "wrong_type", "dead_letters": 1},
    ]
    latest = sorted(shown["latest"], key=lambda r: r["offset"])
    assert [r["raw"] for r in latest] == SHOWN
    assert [r["raw_bytes"] for r in latest] == [len(raw) for raw in ARRIVED]
    assert latest[4]["reason"].startswith("not_json")  # a CSV line is not JSON
    code, text = _run("query", "dead-letters", "--store", store, "--limit", "2")
    assert code == 0, text
    flat = " ".join(text.split())
    assert "dead letters by topic and reason" in flat
    assert "latest dead letters (up to 2)" in flat
    assert "\x1b" not in text  # the record's escape sequences never reach the terminal


@pytest.mark.parametrize(
    ("raw", "whole", "text"),
    [
        (b"plain", True, "plain"),
        ("Tampa – café 🎧".encode(), True, "Tampa – café 🎧"),
        (b"a\tb\r\n\x00\x7f", True, "a\\tb\\r\\n\\x00\\x7f"),
        (b"\xc2\x85 \xe2\x80\x8b \xe2\x80\xa8", True, "\\u0085 \\u200b \\u2028"),
        (b"\xff\x85", True, "\\xff\\x85"),
        ("é".encode()[:1], True, "\\xc3"),  # whole: a lone lead byte is a bad byte
        (b"ab" + "é".encode()[:1], False, "ab"),  # cut: an incomplete last character is dropped
        (b"a\\tb", True, "a\\tb"),  # a backslash stays as written
    ],
)
def test_printable_keeps_text_and_escapes_the_rest(raw: bytes, whole: bool, text: str) -> None:
    assert printable(raw, whole) == text


def test_demo_refuses_to_wipe_a_stream_store(events: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert _run("stream", "--input", str(events), "--store", store, "--max-events", "10")[0] == 0
    code, text = _run("demo", "--duration", "1", "--no-web", "--store", store)
    assert code == 1
    assert "holds results of `backbeat stream`" in text


def test_json_flag_works_after_the_command(events: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert _run("stream", "--input", str(events), "--store", str(store))[0] == 0
    command = ["query", "top-artists", "--store", str(store), "--limit", "3", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "backbeat", *command],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 3


def test_stream_from_is_earliest_latest_or_an_iso_time_naive_meaning_utc() -> None:
    assert (_start_from("earliest"), _start_from("latest")) == ("earliest", "latest")
    ten_utc = datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert _start_from("2026-01-05T10:00:00") == ten_utc
    assert _start_from("2026-01-05T10:00:00Z") == ten_utc
    assert _start_from("2026-01-05T12:00:00+02:00") == ten_utc


def test_stream_serve_answers_while_it_streams_and_stops_with_it(
    events: Path, tmp_path: Path
) -> None:
    """``stream --follow --serve``: the API in its own process answers with every event the
    stream committed; Ctrl-C stops both."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "backbeat", "stream", "--input", str(events), "--follow",
         "--store", str(tmp_path / "s"), "--serve", "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        url = ""
        for raw in proc.stderr:
            if raw.startswith(b"dashboard: "):
                url = raw.decode().split()[1]
                break
        assert url, "no dashboard URL"
        expected = sum(len(f.read_bytes().splitlines()) for f in events.glob("*.jsonl"))
        deadline = time.monotonic() + 60
        total = -1
        while total != expected and time.monotonic() < deadline:
            with urllib.request.urlopen(f"{url}api/summary", timeout=10) as response:
                total = json.loads(response.read())["events_total"]
            time.sleep(0.2)
        assert total == expected
        with urllib.request.urlopen(url, timeout=10) as page:
            assert "<title>backbeat · live</title>" in page.read().decode()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        proc.stderr.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}health", timeout=5)
