"""Acceptance 3: a listener plays several tracks of a genre new to them, through the engine
(``stream --follow --recommend --serve``); within 5 s of the commit that genre's share of their
top 20 recommendations rises, without a retrain (the same model version answers).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from backbeat.simulate.simulator import Simulator
from backbeat.sinks import queries as q
from backbeat.sinks.registry import open_reader
from tests.support.dashboard import server_process
from tests.support.recommend import SimWeek, backbeat, copy_store, last_listen, new_listens

TOP = 20


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _until(what: str, check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout_s:g} s")


def _listener_and_new_genre(store: Path) -> tuple[int, str, list[str]]:
    """A listener with a long history in few genres, a popular genre they never played, and
    the genres they did."""
    reader = open_reader(str(store))
    try:
        rows = reader.run(q.Interactions())
    finally:
        reader.close()
    per_user = rows.group_by("user_id").aggregate([("plays", "sum"), ("genre", "count_distinct")])
    regulars = per_user.filter(pc.greater_equal(per_user["plays_sum"], 50))
    fewest = regulars.sort_by([("genre_count_distinct", "ascending"), ("user_id", "ascending")])
    user = fewest["user_id"][0].as_py()
    heard = set(rows.filter(pc.equal(rows["user_id"], user))["genre"].to_pylist())
    genres = rows.group_by("genre").aggregate([("plays", "sum")])
    ranked = genres.sort_by([("plays_sum", "descending")])["genre"].to_pylist()
    return user, next(g for g in ranked if g not in heard), sorted(heard)


def test_new_genre_rises_in_recommendations_within_5s_of_the_commit(
    sim_week: SimWeek, tmp_path: Path
) -> None:
    store = copy_store(sim_week.store, tmp_path / "store")
    backbeat("recommend", "train", "--store", str(store))
    user, genre, heard = _listener_and_new_genre(store)
    catalog = Simulator(sim_week.settings).catalog.table
    in_genre = catalog.filter(pc.equal(catalog["track_genre"], genre))
    tracks = in_genre.sort_by([("popularity", "descending")]).slice(0, 8).to_pylist()
    template = last_listen(sim_week.log, user)
    live = tmp_path / "live"
    live.mkdir()
    (live / "listen_events.jsonl").write_text("")

    args = (
        "stream",
        "--input",
        str(live),
        "--follow",
        "--store",
        str(store),
        "--recommend",
        "--serve",
    )
    with server_process(*args) as server:
        api = server.url + "api/"
        model = _until("the model loads", lambda: _model(api), 60)
        before = _share(api, user, genre)
        with (live / "listen_events.jsonl").open("a") as out:
            out.write(new_listens(template, tracks, template["ts"] + 3_600_000))
        _until("the listens commit", lambda: _listened(api, user, genre), 60)
        committed = time.monotonic()
        after = _until("the genre rises", lambda: _risen(api, user, genre, before), 5.0)
        took = time.monotonic() - committed
        answered = _get(f"{api}users/{user}/recommendations?limit={TOP}")["model"]
    print(
        f"\nlistener {user} (genres {', '.join(heard)}) played {len(tracks)} {genre} tracks: "
        f"{genre} in their top {TOP}: {before:.0%} before, {after:.0%} {took:.2f}s after the commit"
    )
    assert answered["version"] == model["model_version"]  # an update, not a retrain
    assert after > before


def _model(api: str) -> dict[str, Any] | None:
    try:
        info = dict(_get(api + "recommend/model"))
    except OSError:
        return None
    return info if info["ready"] else None


def _share(api: str, user: int, genre: str) -> float:
    items = _get(f"{api}users/{user}/recommendations?limit={TOP}")["items"]
    return sum(item["genre"] == genre for item in items) / TOP


def _listened(api: str, user: int, genre: str) -> bool:
    items = _get(f"{api}users/{user}/listens?limit=5")["items"]
    return any(item["genre"] == genre for item in items)


def _risen(api: str, user: int, genre: str, before: float) -> float | None:
    share = _share(api, user, genre)
    return share if share > before else None
