"""Acceptance 1: on a simulated week the model beats the training period's most-played list:
NDCG@10 at least twice as high, and more of its tracks are in the listener's hidden favourite
genres (the simulator knows each listener's taste; the model never sees it).

Both numbers are printed (``-s``) and asserted; ``backbeat recommend evaluate`` reports them
the way a user runs it.
"""

from __future__ import annotations

import numpy as np
import pytest

from backbeat.recommend.evaluate import Evaluation, evaluate_store, split_of
from backbeat.simulate.simulator import Simulator
from backbeat.sinks.registry import open_reader
from tests.support.recommend import SimWeek, as_json

pytestmark = pytest.mark.usefixtures("sim_week")


def _favourite_share(found: Evaluation, lists: np.ndarray, week: SimWeek) -> float:
    """Share of recommended tracks whose genre is among the listener's 3 strongest."""
    sim = Simulator(week.settings)
    genres = sim.catalog.genres
    favourite = {
        int(uid): {genres[g] for g in row[:3]}
        for uid, row in zip(sim.users.user_id, sim.users.taste_genre, strict=True)
    }
    track_genre = found.items.table["genre"].to_pylist()
    inside = total = 0
    for uid, picked in zip(found.users.tolist(), lists, strict=True):
        if uid not in favourite:
            continue  # a newcomer: its taste was drawn later
        for item in picked[picked >= 0].tolist():
            total += 1
            inside += track_genre[item] in favourite[uid]
    return inside / total


def test_model_doubles_the_ndcg_of_the_most_played_list_and_finds_hidden_taste(
    sim_week: SimWeek,
) -> None:
    report = as_json("recommend", "evaluate", "--store", str(sim_week.store))
    model, popular = report["model"], report["most_played"]
    print(
        f"\nevaluate on {report['users']:,} listeners (split {report['split']}): "
        f"NDCG@10 model {model['ndcg']:.4f} vs most played {popular['ndcg']:.4f} "
        f"(x{model['ndcg'] / popular['ndcg']:.1f}); recall@10 {model['recall']:.4f} vs "
        f"{popular['recall']:.4f}; coverage {model['coverage']:.4f} vs {popular['coverage']:.4f}"
    )
    assert model["ndcg"] >= 2 * popular["ndcg"]
    assert model["recall"] > popular["recall"]

    reader = open_reader(str(sim_week.store))
    try:
        found = evaluate_store(reader, split_of(reader, 0.15))
    finally:
        reader.close()
    assert found.model.ndcg == pytest.approx(model["ndcg"])  # the command's numbers
    ours = _favourite_share(found, found.model_lists, sim_week)
    theirs = _favourite_share(found, found.baseline_lists, sim_week)
    print(
        f"tracks in the listener's 3 favourite genres: model {ours:.1%}, most played {theirs:.1%}"
    )
    assert ours > theirs
