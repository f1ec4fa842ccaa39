"""Usage errors as a user meets them: a bad flag value, an unknown option or command is one
line and exit code 1 in every command (as the README promises), never Typer's box and exit
code 2; ``--help`` still works; a repeatable option takes several values.

Next: ``backbeat.commands.usage``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from backbeat.commands import app
from backbeat.commands.usage import spread
from tests.cli.test_cli import _run, events  # noqa: F401 - the module's simulated hour

BOX = ("╭", "│", "╰", "Usage:")


def _paths() -> list[tuple[str, ...]]:
    """Every command's path: ``("stream",)``, ``("topics", "create")``..."""
    root = get_command(app)
    found: list[tuple[str, ...]] = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        found += [(name, sub) for sub in subs] if subs else [(name,)]
    return found


def _one_line_exit_1(code: int, text: str) -> None:
    assert code == 1, text
    assert text.startswith("error: "), text
    assert not any(mark in text for mark in BOX), text
    assert len(text.strip().splitlines()) <= 2, text  # one message (rich may wrap it once)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("simulate", "--users", "abc"), "error: --users: 'abc' is not a valid integer"),
        (("query", "top-songs", "--limit", "0"), "error: --limit: '0' is too small (at least 1)"),
        (("stream", "--port", "70000"), "error: --port: '70000' is too large (at most 65535)"),
        (("stream", "--timeout", "-1"), "error: --timeout: '-1' is too small (at least 0)"),
        (("produce", "--rate", "fast"), "error: --rate: 'fast' is not a valid number"),
        (("demo", "--users", "1.5"), "error: --users: '1.5' is not a valid integer"),
        (("serve", "--port", "http"), "error: --port: 'http' is not a valid integer"),
        (("topics", "create", "--partitions", "x"), "error: --partitions: 'x' is not a valid"),
        (("--log-level", "LOUD", "version"), "error: --log-level: 'LOUD' is not one of 'DEBUG'"),
        (("query", "shoe"), "error: backbeat query: 'shoe' is not one of 'top-songs'"),
        (("query",), "error: missing argument 'name'. Choose from: top-songs, top-artists"),
        (("stream", "--input"), "error: option '--input' requires an argument"),
        (("nope",), "error: no such command 'nope' (see backbeat --help)"),
        (("topics",), "error: missing command (see backbeat topics --help)"),
        (("--debug", "simulate", "--users", "abc"), "error: --users: 'abc' is not a valid"),
    ],
)
def test_a_bad_flag_value_is_one_line_naming_flag_and_value(
    args: tuple[str, ...], message: str
) -> None:
    code, text = _run(*args)
    _one_line_exit_1(code, text)
    assert message in " ".join(text.split())


@pytest.mark.parametrize("path", _paths(), ids=" ".join)
def test_every_command_refuses_an_unknown_option_in_one_line(path: tuple[str, ...]) -> None:
    code, text = _run(*path, "--no-such-flag")
    _one_line_exit_1(code, text)
    assert "no such option: --no-such-flag" in text
    assert f"(see backbeat {' '.join(path)} --help)" in " ".join(text.split())


@pytest.mark.parametrize("path", [(), *_paths()], ids=lambda p: " ".join(p) or "backbeat")
def test_help_still_works_everywhere(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: backbeat" in " ".join(result.output.split())


def test_the_console_script_says_it_in_one_line_too() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "backbeat", "stream", "--batch-size", "0", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == "error: --batch-size: '0' is too small (at least 1)"
    assert done.stdout == ""


def test_a_repeatable_option_takes_several_values() -> None:
    stream = get_command(app).commands["stream"]  # type: ignore[attr-defined]
    assert spread(stream, ["--input", "a", "b", "--store", "s", "--topics", "x", "y"]) == [
        "--input", "a", "--input", "b", "--store", "s", "--topics", "x", "--topics", "y",
    ]  # fmt: skip
    assert spread(stream, ["-i", "a", "b", "--follow", "c"]) == [
        "-i", "a", "-i", "b", "--follow", "c",
    ]  # fmt: skip
    assert spread(stream, ["--input=a", "b", "--", "c"]) == ["--input=a", "--input", "b", "--", "c"]
    assert spread(stream, ["--input", "-", "b"]) == ["--input", "-", "--input", "b"]
    query = get_command(app).commands["query"]  # type: ignore[attr-defined]
    assert spread(query, ["top-songs", "x"]) == ["top-songs", "x"]  # positional: left alone


def test_input_a_b_is_input_a_input_b(events: Path, tmp_path: Path) -> None:  # noqa: F811
    files = [str(events / "listen_events.jsonl"), str(events / "auth_events.jsonl")]
    code, text = _run("--json", "stream", "--input", *files, "--store", str(tmp_path / "a"))
    assert code == 0, text
    together = json.loads(text)
    code, text = _run(
        "--json", "stream", "--input", files[0], "--input", files[1], "--store", str(tmp_path / "b")
    )
    assert code == 0, text
    assert json.loads(text) == together | {"seconds": json.loads(text)["seconds"]}
    lines = sum(len(Path(f).read_bytes().splitlines()) for f in files)
    assert together["events_in"] == lines > 0
    code, text = _run("stream", "--input", files[0], "--store", str(tmp_path / "c"), "stray")
    _one_line_exit_1(code, text)
    assert "unexpected extra argument(s) (stray)" in text  # after another option: refused
