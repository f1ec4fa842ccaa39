"""The recommender on the PostgreSQL store: the model is a row of the store's ``shelf`` table,
training twice keeps both versions, and ``recommend user`` answers from the newest with the
store's listens.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from backbeat.simulate.simulator import SimulatorSettings
from tests.support.recommend import WEEK_START, as_json, backbeat

pytestmark = pytest.mark.integration


def test_train_and_ask_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    from backbeat.wiring import write_jsonl_run

    settings = SimulatorSettings(
        users=200, seed=3, start=WEEK_START, end=WEEK_START + timedelta(hours=12)
    )
    write_jsonl_run(settings, tmp_path / "log", progress=False)
    backbeat("stream", "--input", str(tmp_path / "log"), "--store", postgres_url)
    first = as_json("recommend", "train", "--store", postgres_url)
    second = as_json("recommend", "train", "--store", postgres_url)
    assert second["version"] == first["version"] + 1
    user = 7
    answer = as_json("recommend", "user", str(user), "--store", postgres_url, "--limit", "5")
    assert len(answer) == 5
    assert {row["reason"] for row in answer} <= {
        "similar listeners", "similar sound", "popular in your genres",
        "like what you play now", "popular",
    }  # fmt: skip
    similar = as_json("recommend", "similar", answer[0]["track"], "--store", postgres_url)
    assert similar
    assert answer[0]["track"] not in {row["track"] for row in similar}
