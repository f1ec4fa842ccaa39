"""Is the model any good? A time split of the history, scored against the most-played list.

Train on the listens before the split, then, for every listener with listens on both sides
(at most ``max_users``, drawn with a fixed seed), recommend ``k`` tracks and check them
against the tracks they went on to like after the split (positive weight). Both the model and
the baseline (the training period's most played tracks) leave out what the listener heard in
the ``recent_ms`` before the split, exactly as serving does, and those tracks do not count as
hits. Reported per model: NDCG@k (binary relevance), recall@k (hits / liked tracks), and
catalog coverage (distinct tracks recommended / tracks the model knows).

Next: ``backbeat.commands.recommend`` (``backbeat recommend evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.errors import StoreNotReadyError
from backbeat.recommend.history import History
from backbeat.recommend.items import Items, build_items
from backbeat.recommend.model import Params, train
from backbeat.recommend.rank import State, rank
from backbeat.simulate.catalog import Catalog
from backbeat.sinks import queries as q

I64 = npt.NDArray[np.int64]
CHUNK: Final = 512


@dataclass(frozen=True, slots=True)
class Scores:
    ndcg: float
    recall: float
    coverage: float


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Both models' scores, and what each recommended (for further checks)."""

    split_ms: int
    k: int
    users: I64  # listener ids scored
    model: Scores
    baseline: Scores
    model_lists: I64  # (users, k) item rows, -1: none
    baseline_lists: I64
    items: Items
    train_listens: int
    test_listens: int


def split_of(reader: q.Reader, test_share: float) -> int:
    """The time at which ``test_share`` of the store's listening span lies after it."""
    rows = reader.run(q.Interactions())
    if rows.num_rows == 0:
        raise StoreNotReadyError("the store holds no listens to evaluate on")
    lo = pc.min(rows["first_ts"]).as_py()
    hi = pc.max(rows["last_ts"]).as_py()
    return int(lo + (1.0 - test_share) * (hi - lo))


def evaluate_store(
    reader: q.Reader,
    split_ms: int,
    catalog: Catalog | None = None,
    *,
    k: int = 10,
    recent_ms: int = 7 * 86_400_000,
    max_users: int = 5000,
) -> Evaluation:
    """:func:`evaluate` on the store's listens before and after ``split_ms``."""
    before = reader.run(q.Interactions(span=q.TimeRange(end=split_ms)))
    after = reader.run(q.Interactions(span=q.TimeRange(start=split_ms)))
    return evaluate(before, after, split_ms, catalog, k=k, recent_ms=recent_ms, max_users=max_users)


def evaluate(
    before: pa.Table,
    after: pa.Table,
    split_ms: int,
    catalog: Catalog | None = None,
    *,
    k: int = 10,
    recent_ms: int = 7 * 86_400_000,
    max_users: int = 5000,
    params: Params | None = None,
    seed: int = 0,
) -> Evaluation:
    """Train on ``before`` (``Interactions`` rows), score on ``after`` (see the module
    docstring).

    Raises:
        StoreNotReadyError: no listener has listens on both sides of the split.
    """
    items = build_items(catalog, before)
    history, _ = History.empty(len(items)).add(before, items)
    model = train(history, items, params or Params(), 0)
    state = State.of(items, history, model.user_factors, model.item_factors)

    liked = after.filter(pc.greater(after["weight"], 0))
    test_users = np.unique(liked["user_id"].to_numpy())
    users = np.asarray([u for u in test_users.tolist() if u in history.rows], np.int64)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    rows = np.asarray([history.rows[int(u)] for u in users], np.int64)
    excluded = [history.heard_since(int(r), split_ms - recent_ms) for r in rows]
    relevant = _relevant(liked, users, items, excluded)
    keep = np.asarray([len(r) > 0 for r in relevant], bool)
    users, rows = users[keep], rows[keep]
    excluded = [e for e, ok in zip(excluded, keep, strict=True) if ok]
    relevant = [r for r, ok in zip(relevant, keep, strict=True) if ok]
    if not len(users):
        raise StoreNotReadyError("no listener has listens on both sides of the split")

    lists = np.concatenate(
        [
            rank(state, rows[at : at + CHUNK], k, excluded[at : at + CHUNK]).tracks
            for at in range(0, len(rows), CHUNK)
        ]
    )
    plays = before.group_by("track").aggregate([("plays", "sum")])
    order = pc.sort_indices(plays, [("plays_sum", "descending"), ("track", "ascending")])
    ranked = [items.index[t] for t in plays["track"].take(order).to_pylist()]
    popular = np.asarray([_first_k(ranked, set(e.tolist()), k) for e in excluded], np.int64)
    return Evaluation(
        split_ms=split_ms,
        k=k,
        users=users,
        model=_scores(lists, relevant, len(items)),
        baseline=_scores(popular, relevant, len(items)),
        model_lists=lists,
        baseline_lists=popular,
        items=items,
        train_listens=int(pc.sum(before["plays"]).as_py() or 0),
        test_listens=int(pc.sum(after["plays"]).as_py() or 0),
    )


def _relevant(
    liked: pa.Table, users: I64, items: Items, excluded: list[npt.NDArray[np.int32]]
) -> list[set[int]]:
    """Per listener: the tracks liked after the split (-1 - n for tracks the model does not
    know: they count, and can never be hit), minus the excluded."""
    per: dict[int, set[int]] = {int(u): set() for u in users}
    unknown: dict[str, int] = {}
    for uid, track in zip(liked["user_id"].to_pylist(), liked["track"].to_pylist(), strict=True):
        if uid in per:
            row = items.find(track)
            per[uid].add(row if row is not None else -2 - unknown.setdefault(track, len(unknown)))
    return [per[int(u)] - set(e.tolist()) for u, e in zip(users, excluded, strict=True)]


def _first_k(ranked: list[int], skip: set[int], k: int) -> list[int]:
    out = [t for t in ranked[: k + len(skip)] if t not in skip][:k]
    return out + [-1] * (k - len(out))


def _scores(lists: I64, relevant: list[set[int]], n_items: int) -> Scores:
    k = lists.shape[1]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, recall = [], []
    for picked, rel in zip(lists, relevant, strict=True):
        hits = np.asarray([t in rel for t in picked.tolist()], np.float64)
        ideal = discount[: min(k, len(rel))].sum()
        ndcg.append(float(hits @ discount) / ideal)
        recall.append(float(hits.sum()) / len(rel))
    shown = np.unique(lists[lists >= 0])
    return Scores(
        ndcg=float(np.mean(ndcg)),
        recall=float(np.mean(recall)),
        coverage=len(shown) / max(n_items, 1),
    )
