"""Acceptance 2: real Spotify exports (``../shared/data/spotify/``) replayed into a store:
``recommend user`` answers with tracks the listener has not heard recently, and ``evaluate``
reports the model and the most-played list on a time split (the figures are in
docs/recommendations.md; one listener each, so no threshold).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backbeat.sinks import queries as q
from backbeat.sinks.registry import open_reader
from tests.support.recommend import as_json, backbeat

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "spotify"
EXPORTS = (
    (DATA / "Streaming_History_Audio_sample.json", "7d", 7 * 86_400_000),  # Jan-Dec 2023
    # five days of January 2020: with a week left out nothing would be left to recommend
    (DATA / "StreamingHistory0_sample.json", "1d", 86_400_000),
)

pytestmark = pytest.mark.skipif(
    not EXPORTS[0][0].exists(), reason=f"the shared test data is not at {DATA}"
)


@pytest.mark.parametrize(("export", "recent", "recent_ms"), EXPORTS, ids=lambda p: str(p)[-30:])
def test_real_history_gets_recommendations_and_an_evaluation(
    export: Path, recent: str, recent_ms: int, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    backbeat("replay", str(export), "--store", str(store))
    trained = as_json("recommend", "train", "--store", str(store))
    reader = open_reader(str(store))
    try:
        history = reader.run(q.Interactions()).to_pylist()
    finally:
        reader.close()
    (user,) = {row["user_id"] for row in history}  # one listener per export
    latest = max(row["last_ts"] for row in history)
    heard = {row["track"] for row in history if row["last_ts"] >= latest - recent_ms}

    answer = as_json("recommend", "user", str(user), "--store", str(store), "--recent", recent)
    assert answer, "no recommendations"
    assert not {row["track"] for row in answer} & heard  # nothing heard recently
    report = as_json(
        "recommend", "evaluate", "--store", str(store), "--test-share", "0.3", "--recent", recent
    )
    print(
        f"\n{export.name}: {len(history)} (listener, track) pairs, model v{trained['version']}; "
        f"evaluate split {report['split']}: NDCG@10 model {report['model']['ndcg']:.4f} vs "
        f"most played {report['most_played']['ndcg']:.4f}, recall@10 "
        f"{report['model']['recall']:.4f} vs {report['most_played']['recall']:.4f}, coverage "
        f"{report['model']['coverage']:.4f} vs {report['most_played']['coverage']:.4f}"
    )
    assert set(report["model"]) == set(report["most_played"]) == {"ndcg", "recall", "coverage"}
