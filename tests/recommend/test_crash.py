"""Acceptance 4: kill -9 during training or during an update; the previous model keeps
serving and no half-written model is ever loaded.

- Training is killed while it fits and while it saves; a ``serve --recommend`` process keeps
  answering with the model it had, the shelf's newest version loads whole, and a retrain that
  completes is picked up without a restart.
- An update (the engine's process folding a committed batch into the model) is killed; the
  listens are in the store, so a restart serves the same model version with them folded in.
(A kill -9 in the middle of the shelf's own write is ``tests/sinks/test_shelf.py``.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from backbeat.recommend import store as shelved
from backbeat.sinks.registry import open_shelf
from tests.support.dashboard import server_process
from tests.support.recommend import (
    SimWeek,
    as_json,
    copy_store,
    last_listen,
    new_listens,
)

USER = 7


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _killed_at(args: list[str], line: str, timeout_s: float = 120) -> list[str]:
    """Run ``backbeat ARGS``; SIGKILL it as soon as it prints a line containing ``line``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "backbeat", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env | {"NO_COLOR": "1"},
    )  # fmt: skip
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stderr is not None
    try:
        for text in proc.stderr:
            seen.append(text.rstrip())
            if line in text:
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "\n".join(seen[-20:])
        else:
            raise AssertionError(f"never printed {line!r}:\n" + "\n".join(seen[-20:]))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return seen


def _newest_loads(store: Path) -> int:
    shelf = open_shelf(str(store))
    try:
        model = shelved.load(shelf)  # reads and checks every array
    finally:
        shelf.close()
    assert model is not None
    return model.version


def test_kill9_during_training_leaves_the_previous_model_serving(
    sim_week: SimWeek, tmp_path: Path
) -> None:
    store = copy_store(sim_week.store, tmp_path / "store")
    first = as_json("recommend", "train", "--store", str(store))["version"]
    with server_process("serve", "--store", str(store), "--recommend") as server:
        url = f"{server.url}api/users/{USER}/recommendations?limit=10"
        assert _until_version(url, first)
        for moment in ("fitting ALS", "saving a model"):
            _killed_at(["--log-level", "INFO", "recommend", "train", "--store", str(store)], moment)
            newest = _newest_loads(store)
            assert newest in (first, first + 1), newest  # whole, whichever it is
            served = _get(url)
            assert served["model"]["version"] in (first, newest)
            assert len(served["items"]) == 10
            first = newest
        retrained = as_json("recommend", "train", "--store", str(store))["version"]
        assert retrained == first + 1
        assert _until_version(url, retrained)  # picked up without a restart


def _until_version(url: str, version: int, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if _get(url)["model"]["version"] == version:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _until_ready(url: str, timeout_s: float = 60) -> Any:
    """The model route's answer once a model is served (a server loads it after it listens)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            info = _get(url)
            if info["ready"]:
                return info
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no model served at {url} within {timeout_s:g} s")


def test_kill9_during_an_update_serves_the_same_model_with_the_listens_after_restart(
    sim_week: SimWeek, tmp_path: Path
) -> None:
    store = copy_store(sim_week.store, tmp_path / "store")
    version = as_json("recommend", "train", "--store", str(store))["version"]
    live = tmp_path / "live"
    live.mkdir()
    template = last_listen(sim_week.log, USER)
    track = {
        "track_id": "kill9track00000000000A", "artists": "Kill Nine", "track_name": "Mid Update",
        "album_name": "Crash", "track_genre": template["genre"], "duration_ms": 200_000,
    }  # fmt: skip
    (live / "listen_events.jsonl").write_text(
        new_listens(template, [track], template["ts"] + 3_600_000)
    )
    _killed_at(
        ["--log-level", "DEBUG", "stream", "--input", str(live), "--follow", "--store",
         str(store), "--recommend"],
        "recommender: folding batches",
    )  # fmt: skip
    answer = as_json("recommend", "user", str(USER), "--store", str(store), "--limit", "50")
    assert answer
    assert all(row["track"] != track["track_id"] for row in answer)
    with server_process("serve", "--store", str(store), "--recommend") as server:
        info = _until_ready(server.url + "api/recommend/model")
        listens = _get(f"{server.url}api/users/{USER}/listens?limit=1")["items"]
    assert info["model_version"] == version
    assert listens[0]["track"] == track["track_id"]
    assert info["updates"] >= 1  # the killed update, done again from the store
