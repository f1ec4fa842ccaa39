"""Ranking: collaborative scores blended with sound and genre popularity, a reason per track.

For a listener with history, three signals score every track:

- *similar listeners*: the ALS prediction (user factors . track factors), scaled so the best
  track scores 1;
- *similar sound*: the cosine between the track's content vector and the listener's profile
  (the mean of the content vectors of what they liked, by weight);
- *popular in your genres*: the track's popularity (distinct listeners who liked it, log
  scale, 0..1) times the listener's share of liked listens in its genre.

They blend as ``a * cf + (1 - a) * (sound + genre) / 2`` with ``a = n / (n + 10)`` for a
listener who liked ``n`` tracks: collaborative filtering earns trust with history, and a
newcomer is served by sound and genre. A fourth signal, *like what you play now* (the content
cosine to the tracks of the hour before the listener's latest listen), takes a fixed
:data:`NOW` share of the score, so a listener who turns to a new genre sees it at once, not
only once it outweighs a week of history. Each track's reason is the largest term.
A listener with no history gets the most popular tracks (reason ``popular``). Tracks heard
since ``since_ms`` are left out. Everything is matrix algebra over many listeners at once
(:func:`rank`), so one request and a whole evaluation run the same code.

Next: ``service.py`` (the state it ranks from), ``evaluate.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import sparse

from backbeat.recommend.history import History
from backbeat.recommend.items import Items

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

REASONS: Final = (
    "similar listeners", "similar sound", "popular in your genres", "like what you play now",
    "popular",
)  # fmt: skip
TRUST: Final = 10.0
"""Liked tracks at which collaborative filtering counts as much as sound and genre."""
NOW: Final = 0.3
"""The share of every score that goes to sounding like what the listener plays now."""
NOW_MS: Final = 3_600_000
"""What a listener "plays now": the tracks of the hour before their latest listen."""


@dataclass(frozen=True, eq=False)
class State:
    """What ranking reads: tracks, history and factors aligned with both (rows of
    ``user_factors`` = rows of ``history``; of ``item_factors`` = rows of ``items``)."""

    items: Items
    history: History
    user_factors: F32
    item_factors: F32
    popularity: F32  # per track, 0..1
    genres: sparse.csr_matrix  # (items, genres) one-hot

    @classmethod
    def of(cls, items: Items, history: History, user_f: F32, item_f: F32) -> State:
        liked = history.weight.indices[history.weight.data > 0]
        counts = np.bincount(liked, minlength=len(items)).astype(np.float32)
        pop = np.log1p(counts)
        top = float(pop.max()) if len(pop) else 0.0
        popularity = np.asarray(pop / top if top > 0 else pop, np.float32)
        return cls(items, history, user_f, item_f, popularity, _genre_matrix(items))


@dataclass(frozen=True, slots=True)
class Ranked:
    """Per listener (rows): the chosen tracks, best first, their scores and reasons."""

    tracks: I64  # (n, k) item rows; -1 where fewer than k were left
    scores: F32
    reasons: npt.NDArray[np.int8]  # index into REASONS


def rank(state: State, rows: I64, k: int, exclude: list[npt.NDArray[np.int32]]) -> Ranked:
    """The best ``k`` tracks for each history row in ``rows`` (-1: a listener without
    history), none of ``exclude[i]`` for ``rows[i]``."""
    n_items = len(state.items)
    scores, reasons = _blend(state, rows)
    for i, excluded in enumerate(exclude):
        scores[i, excluded] = -np.inf
    k = min(k, n_items)
    if k == 0:
        empty = np.zeros((len(rows), 0))
        return Ranked(empty.astype(np.int64), empty.astype(np.float32), empty.astype(np.int8))
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    top, picked = np.take_along_axis(top, order, axis=1), np.take_along_axis(picked, order, 1)
    chosen = np.take_along_axis(reasons, top, axis=1)
    top = np.where(np.isfinite(picked), top, -1)
    return Ranked(top.astype(np.int64), picked.astype(np.float32), chosen)


def _blend(state: State, rows: I64) -> tuple[F32, npt.NDArray[np.int8]]:
    """Scores (n, items) and the reason of each (the largest term)."""
    n_items = len(state.items)
    known = rows >= 0
    safe = np.where(known, rows, 0)
    weight = state.history.weight[safe]
    liked = weight.multiply(weight > 0).tocsr()
    n_liked = np.diff(liked.indptr).astype(np.float32) * known
    trust = (n_liked / (n_liked + TRUST))[:, None]

    cf = state.user_factors[safe] @ state.item_factors.T if len(state.item_factors) else None
    if cf is None or not state.item_factors.any():
        cf = np.zeros((len(rows), n_items), np.float32)
    best = np.max(cf, axis=1, keepdims=True)
    cf = cf / np.where(best > 0, best, 1.0)

    sound = _unit(np.asarray(liked @ state.items.content, np.float32)) @ state.items.content.T
    playing = _now_playing(state.history, safe)
    now = _unit(np.asarray(playing @ state.items.content, np.float32)) @ state.items.content.T

    genres = state.genres
    taste = (liked @ genres).toarray().astype(np.float32)
    total = taste.sum(axis=1, keepdims=True)
    taste = taste / np.where(total > 0, total, 1.0)
    in_genres = np.asarray(genres @ taste.T, np.float32).T * state.popularity[None, :]

    rest = 1 - NOW
    terms = np.stack(
        [
            rest * trust * cf,
            rest * (1 - trust) * sound / 2,
            rest * (1 - trust) * in_genres / 2,
            NOW * now,
        ]
    )
    scores = terms.sum(axis=0).astype(np.float32)
    reasons = np.argmax(terms, axis=0).astype(np.int8)
    cold = n_liked == 0
    scores[cold] = state.popularity[None, :]
    reasons[cold] = REASONS.index("popular")
    return scores, reasons


def _unit(rows: F32) -> F32:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.where(norms > 0, norms, 1.0), np.float32)


def _now_playing(history: History, rows: I64) -> sparse.csr_matrix:
    """(rows, items): 1 for each track a listener played in the :data:`NOW_MS` before their
    latest listen (skipped ones too: they say what the listener is exploring)."""
    last = history.last[rows].tocsr()
    counts = np.diff(last.indptr)
    latest = np.zeros(len(rows), np.int64)
    filled = counts > 0
    if filled.any():
        latest[filled] = np.maximum.reduceat(last.data, last.indptr[:-1][filled])
    recent = last.data >= np.repeat(latest - NOW_MS, counts)
    return sparse.csr_matrix(
        (recent.astype(np.float32), last.indices, last.indptr), shape=last.shape
    )


def _genre_matrix(items: Items) -> sparse.csr_matrix:
    """(items, genres) one-hot of each track's genre (none for an unknown genre)."""
    known = np.flatnonzero(items.genre >= 0)
    return sparse.csr_matrix(
        (np.ones(len(known), np.float32), (known, items.genre[known])),
        shape=(len(items), len(items.genres)),
    )


def similar(state: State, item: int, k: int) -> Ranked:
    """Tracks most like track row ``item``: content cosine, averaged with the cosine of the
    ALS factors when the track has them; reason: the larger of the two halves."""
    sound = state.items.content @ state.items.content[item]
    vectors = state.item_factors
    own = vectors[item] if item < len(vectors) else np.zeros(vectors.shape[1], np.float32)
    if np.any(own):
        norms = np.linalg.norm(vectors, axis=1)
        listeners = (vectors @ own) / np.where(norms > 0, norms, 1.0) / np.linalg.norm(own)
        terms = np.stack([listeners / 2, sound / 2])
    else:
        terms = np.stack([np.zeros_like(sound), sound])
    scores = terms.sum(axis=0)[None, :].astype(np.float32)
    scores[0, item] = -np.inf
    reasons = np.where(terms[0] > terms[1], 0, 1).astype(np.int8)[None, :]
    kk = min(k, len(state.items) - 1)
    if kk <= 0:
        empty = np.zeros((1, 0))
        return Ranked(empty.astype(np.int64), empty.astype(np.float32), empty.astype(np.int8))
    top = np.argsort(-scores[0], kind="stable")[:kk][None, :]
    return Ranked(
        top.astype(np.int64),
        np.take_along_axis(scores, top, 1),
        np.take_along_axis(reasons, top, 1),
    )
