"""The shelf (versioned blobs beside a store) on every backend: put, latest, version and
prune; two writers at once get distinct, intact versions; a writer killed with SIGKILL in the
middle of putting large blobs never leaves a partial version behind.

Each case opens the shelf by ``--store`` location through ``open_shelf``, as the recommender
does: a folder (``FileShelf``) or a fresh PostgreSQL database (``PostgresShelf``).

Next: ``src/backbeat/sinks/shelf.py`` (the contract), ``test_suite.py`` (the stores' suite).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backbeat.errors import ConfigError, StoreError
from backbeat.sinks.registry import open_shelf
from backbeat.sinks.shelf import Shelf

SRC = Path(__file__).resolve().parents[2] / "src"
WRITER = """
import hashlib, sys
from backbeat.sinks.registry import open_shelf
shelf = open_shelf(sys.argv[1])
size = int(sys.argv[2])
block = bytes(range(256)) * (size // 256)
for i in range(1_000_000):
    data = i.to_bytes(8, "big") + block
    about = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    print(f"put {i}", flush=True)
    shelf.put("model", data, about)
    print(f"done {i}", flush=True)
"""
"""A writer putting large blobs in a loop, saying so before and after each put."""


@pytest.fixture(params=["files", pytest.param("postgres", marks=pytest.mark.integration)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "files":
        return str(tmp_path / "store")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def shelf(location: str) -> Iterator[Shelf]:
    opened = open_shelf(location)
    yield opened
    opened.close()


def test_put_latest_version_prune(shelf: Shelf) -> None:
    assert shelf.latest("model") is None
    assert shelf.version("model") is None
    for n in range(1, 5):
        assert shelf.put("model", f"blob {n}".encode(), {"n": n, "note": "é"}) == n
    assert shelf.put("other", b"", {}) == 1
    latest = shelf.latest("model")
    assert latest is not None
    assert (latest.name, latest.version, latest.data, latest.about) == (
        "model",
        4,
        b"blob 4",
        {"n": 4, "note": "é"},
    )
    assert latest.created_ms > 1_700_000_000_000
    assert shelf.version("model") == 4
    assert shelf.prune("model", keep=2) == 2
    assert shelf.prune("model", keep=2) == 0
    assert shelf.version("model") == 4
    assert shelf.put("model", b"blob 5", {}) == 5  # numbers go on after a prune
    assert shelf.latest("other") is not None
    with pytest.raises(ConfigError):
        shelf.prune("model", keep=0)
    for bad in ("", "../x", "a/b", ".hidden", "x" * 101):
        with pytest.raises(ConfigError, match="shelf name"):
            shelf.put(bad, b"", {})


def test_two_writers_get_distinct_intact_versions(location: str) -> None:
    def write(who: int) -> list[int]:
        own = open_shelf(location)
        try:
            return [own.put("model", bytes([who]) * (1000 + i), {"who": who}) for i in range(20)]
        finally:
            own.close()

    results: dict[int, list[int]] = {}
    threads = [
        threading.Thread(target=lambda w=who: results.__setitem__(w, write(w))) for who in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbers = results[1] + results[2]
    assert sorted(numbers) == list(range(1, 41))
    assert results[1] == sorted(results[1])
    assert results[2] == sorted(results[2])
    shelf = open_shelf(location)
    try:
        latest = shelf.latest("model")
        assert latest is not None
        assert latest.version == 40
        assert latest.data == bytes([latest.about["who"]]) * len(latest.data)
        while shelf.version("model") != 1:  # every version intact: read each as the newest
            top = shelf.latest("model")
            assert top is not None
            assert set(top.data) == {top.about["who"]}, f"version {top.version} is mixed"
            assert len(top.data) == 1000 + (results[top.about["who"]].index(top.version))
            _drop_newest(location, shelf, top.version)
    finally:
        shelf.close()


def _drop_newest(location: str, shelf: Shelf, version: int) -> None:
    """Remove one version (no contract call does: prune keeps the newest)."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as con:
            con.execute("DELETE FROM shelf WHERE name = 'model' AND version = %s", (version,))
    else:
        (Path(location) / "shelf" / "model" / f"{version:012d}.blob").unlink()
    assert shelf.version("model") == version - 1


def _wait_for(proc: subprocess.Popen[str], line: str) -> None:
    """Read the writer's output until ``line`` (failing if it ends first)."""
    assert proc.stdout is not None
    for got in proc.stdout:
        if got.strip() == line:
            return
    raise AssertionError(f"the writer ended before {line!r}: {proc.wait()}")


@pytest.mark.slow
def test_kill9_during_put_leaves_a_complete_version(location: str) -> None:
    size = 50 * 2**20
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    # Kill as a put begins (the first, then later ones), between two puts, and (files) once
    # the half-written temporary file is on disk.
    moments = ["put 0", "put 1", "done 1", "put 2"]
    if not location.startswith("postgresql://"):
        moments.append("half")
    for moment in moments:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, location, str(size)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            if moment == "half":
                _wait_for(proc, "put 0")
                _wait_for_half_temp(proc, Path(location) / "shelf" / "model", size // 2)
            else:
                _wait_for(proc, moment)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        _check_intact(location)


def _wait_for_half_temp(proc: subprocess.Popen[str], folder: Path, size: int) -> None:
    """Wait until a temporary file in ``folder`` holds at least ``size`` bytes."""
    while proc.poll() is None:
        for path in folder.glob(".put-*"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size >= size:
                    return
        time.sleep(0.001)  # polling for the file, not waiting a fixed time
    raise AssertionError(f"the writer ended before writing half a blob: {proc.returncode}")


def _check_intact(location: str) -> None:
    shelf = open_shelf(location)
    try:
        latest = shelf.latest("model")
        if latest is None:
            assert shelf.version("model") is None
            return
        assert shelf.version("model") == latest.version
        assert len(latest.data) == latest.about["size"]
        assert hashlib.sha256(latest.data).hexdigest() == latest.about["sha256"]
        assert int.from_bytes(latest.data[:8], "big") + 1 <= latest.version
    finally:
        shelf.close()
    if not location.startswith("postgresql://"):
        folder = Path(location) / "shelf" / "model"
        names = sorted(p.name for p in folder.iterdir())
        assert all(n.startswith(".put-") or n.endswith(".blob") for n in names), names


def test_a_damaged_file_is_an_error_naming_it(tmp_path: Path) -> None:
    shelf = open_shelf(str(tmp_path))
    shelf.put("model", b"x" * 100, {})
    path = tmp_path / "shelf" / "model" / f"{1:012d}.blob"
    path.write_bytes(path.read_bytes()[:-1] + b"y")
    with pytest.raises(StoreError, match=f"{path.name}.*damaged"):
        shelf.latest("model")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(StoreError, match="damaged"):
        shelf.latest("model")
    (tmp_path / "shelf" / "model" / ".put-leftover").write_bytes(b"partial")
    assert shelf.version("model") == 1  # a temporary file is never a version


@pytest.mark.integration
def test_a_shelf_opens_on_a_fresh_database_and_masks_the_password(postgres_url: str) -> None:
    shelf = open_shelf(postgres_url)
    try:
        assert shelf.put("model", b"m", {}) == 1
    finally:
        shelf.close()
    bad = "postgresql://someone:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError) as caught:
        open_shelf(bad)
    assert "s3cret" not in str(caught.value)
    assert "***" in str(caught.value)
