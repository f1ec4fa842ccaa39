"""A simulated week in a store, built once per session, and ``backbeat`` as a subprocess.

:func:`simulated_week` simulates a week of a small population (its hidden tastes are known:
``Simulator(settings).users``), writes the JSONL log and streams it into an embedded store
with ``backbeat stream``, the way a user would. The recommender's tests share it (read only:
a test that writes copies the store folder first, :func:`copy_store`).

Next: ``tests/recommend/`` (the callers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backbeat.simulate.simulator import SimulatorSettings

WEEK_START = datetime(2026, 11, 2, tzinfo=UTC)


@dataclass(frozen=True)
class SimWeek:
    log: Path
    store: Path
    settings: SimulatorSettings


def backbeat(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python -m backbeat ARGS`` without the developer's ``BACKBEAT_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    env |= {"NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "backbeat", *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(f"backbeat {' '.join(args)} -> {done.returncode}:\n{done.stderr}")
    return done


def as_json(*args: str, timeout: float = 600) -> Any:
    """The JSON a ``backbeat --json ARGS`` command prints."""
    return json.loads(backbeat("--json", *args, timeout=timeout).stdout)


def simulated_week(root: Path, users: int, seed: int) -> SimWeek:
    """Simulate ``users`` for a week into ``root/log`` and stream it into ``root/store``."""
    from backbeat.wiring import write_jsonl_run

    settings = SimulatorSettings(
        users=users, seed=seed, start=WEEK_START, end=WEEK_START + timedelta(days=7)
    )
    log, store = root / "log", root / "store"
    write_jsonl_run(settings, log, progress=False)
    backbeat("stream", "--input", str(log), "--store", str(store))
    return SimWeek(log, store, settings)


def copy_store(store: Path, to: Path) -> Path:
    """A private copy of a store folder (a test that writes must not change the shared one)."""
    shutil.copytree(store, to)
    return to


def last_listen(log: Path, user: int) -> dict[str, Any]:
    """The user's last listen event in a simulated log (a template for new ones)."""
    found: dict[str, Any] | None = None
    marker = f'"userId":{user},'
    with (log / "listen_events.jsonl").open() as lines:
        for line in lines:
            if marker in line:
                found = json.loads(line)
    assert found is not None, f"no listen of user {user} in {log}"
    return found


def new_listens(template: dict[str, Any], tracks: list[dict[str, Any]], start_ms: int) -> str:
    """JSON lines: the template's listener playing each of ``tracks`` (catalog rows) to the
    end, a minute apart from ``start_ms``, in a session of their own."""
    session = 900_000_000 + start_ms % 1_000_000
    lines = []
    for i, track in enumerate(tracks):
        seconds = track["duration_ms"] / 1000
        event = template | {
            "ts": start_ms + i * 60_000,
            "eventId": f"test-{session}-{i}",
            "sessionId": session,
            "itemInSession": i,
            "artist": track["artists"].split(";")[0],
            "song": track["track_name"],
            "album": track["album_name"],
            "trackId": track["track_id"],
            "genre": track["track_genre"],
            "duration": seconds,
            "msPlayed": track["duration_ms"],
            "listenPct": 1.0,
            "completed": True,
            "skipped": False,
        }
        event.pop("mood", None)
        lines.append(json.dumps(event))
    return "\n".join(lines) + "\n"
