"""Event text is data: every terminal view shows it as written, never as rich markup, and its
control characters as visible escapes that never reach the terminal raw; ``--json`` keeps it
exact.

Each hostile value goes through the engine for real: listens streamed from a JSONL file into
a store (the ``query`` views), or a catalog the demo's simulator plays (the live view). The
commands run in a pseudo-terminal (``support/terminal.py``), so what is checked is what a
terminal would receive: ``Song [feat. Dorian Electra]`` in full, no hyperlink (OSC 8) or
other OSC sequence, no injected ESC, BEL, CR, C1 or bidi override, exit code 0 and no
traceback; an error that quotes such a value is one line and exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from backbeat.commands import app
from backbeat.events.schema import Topic
from backbeat.simulate.synthetic import synthetic_catalog
from tests.events.samples import record
from tests.support.catalogs import write_kaggle_csv, write_kaggle_table
from tests.support.malformed import dumps
from tests.support.terminal import TerminalRun, run_in_terminal

OSC_LINK = "\x1b]8;;https://evil.example\x07"
LISTENS = [  # (artist, song, genre) as they arrive
    ("Artist [/x]", "Song [feat. Dorian Electra]", "pop [/x]"),
    ("[link=https://evil.example]Click[/link]", "Intro [Original Mono Mix] [/bold]", "[bold]rock"),
    (f"Esc \x1b[31mINJ {OSC_LINK}link", "Bell\x07 CR\rOVER C1\x9b31mINJ \u202eevil", "jazz\x1b[2J"),
]
SHOWN = [  # the same, as a person must read them
    ("Artist [/x]", "Song [feat. Dorian Electra]", "pop [/x]"),
    ("[link=https://evil.example]Click[/link]", "Intro [Original Mono Mix] [/bold]", "[bold]rock"),
    (
        r"Esc \x1b[31mINJ \x1b]8;;https://evil.example\x07link",
        r"Bell\x07 CR\rOVER C1\u009b31mINJ \u202eevil",
        r"jazz\x1b[2J",
    ),
]
# Dead letters show the record and its file's path (without spaces, and in a terminal wide
# enough for the whole table, so that no cell wraps).
FOLDER = "in[bold]x\x1b[31mINJ"
FOLDER_SHOWN = r"in[bold]x\x1b[31mINJ"
BROKEN = b'{"artist":"[/x]\x1b[31mINJ' + OSC_LINK.encode()  # not JSON
BROKEN_SHOWN = r'{"artist":"[/x]\x1b[31mINJ\x1b]8;;https://evil.example\x07'
RAW = (  # what the data holds and must never reach the terminal as it is
    b"\x1b]",  # any OSC: a hyperlink, a window title (rich writes none here)
    b"\x07",  # BEL
    b"\x1b[31mINJ",
    b"\rOVER",
    "\x9b".encode(),  # C1 CSI
    "\u202e".encode(),  # right-to-left override
    b"jazz\x1b",
)

runner = CliRunner()
ARTIST, SONG, GENRE = range(3)


def _assert_text(run: TerminalRun, *shown: str, code: int = 0) -> None:
    assert run.returncode == code, run.text[-3000:]
    assert "Traceback" not in run.text, run.text[-3000:]
    for raw in RAW:
        assert raw not in run.output, (raw, run.output[-3000:])
    for value in shown:
        assert value in run.text, (value, run.text[-3000:])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding three listens of each hostile (artist, song, genre) and a dead letter."""
    folder = tmp_path_factory.mktemp("hostile") / FOLDER
    folder.mkdir()
    lines = [BROKEN] + [
        dumps(record(Topic.LISTEN, i, artist=artist, song=song, genre=genre))
        for i, (artist, song, genre) in enumerate(LISTENS * 3)
    ]
    (folder / "listen_events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    where = folder.parent / "store"
    done = runner.invoke(app, ["--json", "stream", "--input", str(folder), "--store", str(where)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["accepted"] == len(LISTENS) * 3
    return where


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        pytest.param(("top-songs",), (ARTIST, SONG), id="top-songs"),
        pytest.param(("top-artists",), (ARTIST,), id="top-artists"),
        pytest.param(("genre-windows",), (GENRE,), id="genre-windows"),
        pytest.param(("listening-time",), (ARTIST,), id="listening-time"),
        pytest.param(("engagement", "--by", "genre"), (GENRE,), id="engagement"),
    ],
)
def test_query_shows_event_text_as_written_and_json_keeps_it_exact(
    store: Path, args: tuple[str, ...], fields: tuple[int, ...]
) -> None:
    done = runner.invoke(app, ["--json", "query", *args, "--store", str(store)])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.output)
    names = {ARTIST: "artist", SONG: "song", GENRE: "genre"}
    for f in fields:
        assert {r[names[f]] for r in rows} == {listen[f] for listen in LISTENS}
    run = run_in_terminal("query", *args, "--store", str(store))
    _assert_text(run, *(shown[f] for shown in SHOWN for f in fields))


def test_dead_letters_show_the_record_and_its_file_as_text(store: Path) -> None:
    done = runner.invoke(app, ["--json", "query", "dead-letters", "--store", str(store)])
    assert done.exit_code == 0, done.output
    (latest,) = json.loads(done.output)["latest"]
    assert latest["partition"] == str(store.parent / FOLDER / "listen_events.jsonl")
    run = run_in_terminal("query", "dead-letters", "--store", str(store), columns=400)
    _assert_text(run, FOLDER_SHOWN, BROKEN_SHOWN)


DEMO = [  # short enough for the live view's columns
    ("Artist [/x]", "Song [feat. Dorian Electra]", "pop [/x]"),
    ("[link=https://evil.example]L[/link]", "Live [Live]", "[bold]rock"),
    ("Esc \x1b[31mINJ", "Bell\x07 C1\x9b31mINJ", f"jazz{OSC_LINK}"),
]
DEMO_SHOWN = [
    "Artist [/x] — Song [feat. Dorian Electra]",
    "[link=https://evil.example]L[/link] — Live [Live]",
    r"Esc \x1b[31mINJ — Bell\x07 C1\u009b31mINJ",
    "pop [/x]",
    "[bold]rock",
    r"jazz\x1b]8;;https://evil.example\x07",
]


def test_demo_live_view_shows_event_text_as_written(tmp_path: Path) -> None:
    """The demo plays a catalog of hostile tracks: the top lists and the genres show them as
    text; Ctrl-C once every one is on screen, and the demo stops cleanly."""
    tracks = synthetic_catalog(n_tracks=60, n_genres=3, seed=5).table
    genres = tracks["track_genre"].to_pylist()
    tracks = tracks.take([genres.index(g) for g in dict.fromkeys(genres)])  # one of each
    for column, field in (("artists", ARTIST), ("track_name", SONG), ("track_genre", GENRE)):
        at = tracks.schema.get_field_index(column)
        tracks = tracks.set_column(at, column, pa.array([track[field] for track in DEMO]))
    write_kaggle_table(tmp_path / "tracks.csv", tracks)
    where = tmp_path / "demo [bold]x \x1b[31mINJ"
    wanted = [s.encode() for s in DEMO_SHOWN]
    run = run_in_terminal(
        "demo", "--no-web", "--users", "2000", "--duration", "60", "--store", str(where),
        "--catalog", str(tmp_path / "tracks.csv"),
        stop_when=lambda seen: all(w in seen for w in wanted),
    )  # fmt: skip
    _assert_text(run, *DEMO_SHOWN, "demo done", r"demo [bold]x \x1b[31mINJ/")


def _assert_one_error_line(run: TerminalRun, shown: str) -> str:
    _assert_text(run, shown, code=1)
    (line,) = run.lines()
    assert line.startswith("error: ")
    return line


def test_an_error_quoting_data_is_one_line_of_text(tmp_path: Path) -> None:
    """A catalog with a broken row: the parser's message quotes the row, which is data."""
    catalog = tmp_path / "tracks.csv"
    write_kaggle_csv(catalog, n_tracks=5)
    with catalog.open("ab") as fh:
        fh.write(b"Song [/x] " + OSC_LINK.encode() + b"click \x1b[31mINJ,2\n")
    run = run_in_terminal("simulate", "--out", str(tmp_path / "out"), "--catalog", str(catalog))
    shown = r"Song [/x] \x1b]8;;https://evil.example\x07click \x1b[31mINJ"
    assert "cannot read the Kaggle tracks CSV" in _assert_one_error_line(run, shown)


def test_an_error_quoting_a_path_is_one_line_of_text(tmp_path: Path) -> None:
    """A catalog path that does not exist, with markup, a line break and ESC in it."""
    missing = f"{tmp_path}/[/x]/no\nsuch \x1b[31mINJ.csv"
    run = run_in_terminal("simulate", "--out", str(tmp_path / "out"), "--catalog", missing)
    shown = f"{tmp_path}/[/x]/no\\nsuch \\x1b[31mINJ.csv: cannot read the catalog"
    _assert_one_error_line(run, shown)


def test_a_result_line_quoting_data_is_text(tmp_path: Path) -> None:
    out = tmp_path / "out [bold]x \x1b[31mINJ"
    run = run_in_terminal(
        "simulate", "--out", str(out), "--users", "20",
        "--start", "2026-01-05T12:00:00Z", "--end", "2026-01-05T12:10:00Z",
    )  # fmt: skip
    _assert_text(run, r"out [bold]x \x1b[31mINJ/")
    assert "wrote " in run.text
