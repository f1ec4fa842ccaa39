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
    fitted: bool  # any track has factors

    @classmethod
    def of(cls, items: Items, history: History, user_f: F32, item_f: F32) -> State:
        liked = history.weight.indices[history.weight.data > 0]
        counts = np.bincount(liked, minlength=len(items)).astype(np.float32)
        pop = np.log1p(counts)
        top = float(pop.max()) if len(pop) else 0.0
        popularity = np.asarray(pop / top if top > 0 else pop, np.float32)
        return cls(items, history, user_f, item_f, popularity, bool(item_f.any()))


@dataclass(frozen=True, slots=True)
class Ranked:
    """Per listener (rows): the chosen tracks, best first, their scores and reasons."""

    tracks: I64  # (n, k) item rows; -1 where fewer than k were left
    scores: F32
    reasons: npt.NDArray[np.int8]  # index into REASONS


@dataclass(frozen=True, slots=True)
class _Listeners:
    """The per-listener weights and vectors of a blend (one row per listener asked)."""

    cf: F32  # (n,) weight of the scaled ALS score
    users: F32  # (n, factors)
    content: F32  # (n, dims): sound and "now" folded into one vector
    sound: F32  # (n, dims) their parts, for the reasons
    now: F32
    genre: F32  # (n, genres + 1): weight of popularity per genre (last: unknown genre, 0)
    cold: npt.NDArray[np.bool_]


def rank(state: State, rows: I64, k: int, exclude: list[npt.NDArray[np.int32]]) -> Ranked:
    """The best ``k`` tracks for each history row in ``rows`` (-1: a listener without
    history), none of ``exclude[i]`` for ``rows[i]``."""
    k = min(k, len(state.items))
    if k == 0:
        empty = np.zeros((len(rows), 0))
        return Ranked(empty.astype(np.int64), empty.astype(np.float32), empty.astype(np.int8))
    who = _listeners(state, rows)
    cf, best = _cf(state, who)
    content = who.content @ state.items.content.T
    genre = who.genre[:, state.items.genre] * state.popularity[None, :]
    scores = who.cf[:, None] * cf / best + content + genre
    scores[who.cold] = state.popularity
    for i, excluded in enumerate(exclude):
        scores[i, excluded] = -np.inf
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    top, picked = np.take_along_axis(top, order, axis=1), np.take_along_axis(picked, order, 1)
    reasons = _reasons(state, who, top, np.take_along_axis(cf / best, top, axis=1))
    top = np.where(np.isfinite(picked), top, -1)
    return Ranked(top.astype(np.int64), picked.astype(np.float32), reasons)


def _cf(state: State, who: _Listeners) -> tuple[F32, F32]:
    """ALS scores (n, items) and each listener's best (for scaling it to 1)."""
    if not state.fitted:
        return np.zeros((len(who.cf), len(state.items)), np.float32), np.ones(
            (len(who.cf), 1), np.float32
        )
    cf = who.users @ state.item_factors.T
    best = np.max(cf, axis=1, keepdims=True)
    return cf, np.where(best > 0, best, 1.0).astype(np.float32)


def _listeners(state: State, rows: I64) -> _Listeners:
    """Each listener's liked tracks (weights), what they play now, and the blend's weights."""
    n, dims, n_genres = len(rows), state.items.content.shape[1], len(state.items.genres)
    weight, last = state.history.weight, state.history.last
    sound = np.zeros((n, dims), np.float32)
    now = np.zeros((n, dims), np.float32)
    genre = np.zeros((n, n_genres + 1), np.float32)
    trust = np.zeros(n, np.float32)
    users = np.zeros((n, state.user_factors.shape[1]), np.float32)
    for i, row in enumerate(rows.tolist()):
        if row < 0:
            continue
        lo, hi = weight.indptr[row], weight.indptr[row + 1]
        items, w = weight.indices[lo:hi], weight.data[lo:hi]
        liked, w = items[w > 0], w[w > 0]
        if not len(liked):
            continue
        trust[i] = len(liked) / (len(liked) + TRUST)
        users[i] = state.user_factors[row]
        sound[i] = _unit(w @ state.items.content[liked])
        lo, hi = last.indptr[row], last.indptr[row + 1]
        heard = last.data[lo:hi]
        playing = last.indices[lo:hi][heard >= heard.max() - NOW_MS]
        now[i] = _unit(state.items.content[playing].sum(axis=0))
        genres = state.items.genre[liked]
        known = genres >= 0
        genre[i, :n_genres] = np.bincount(genres[known], w[known], n_genres) / max(w.sum(), 1e-9)
    rest = (1 - NOW) * (1 - trust)[:, None]
    return _Listeners(
        cf=(1 - NOW) * trust,
        users=users,
        content=(rest / 2 * sound + NOW * now).astype(np.float32),
        sound=(rest / 2 * sound).astype(np.float32),
        now=(NOW * now).astype(np.float32),
        genre=(rest / 2 * genre).astype(np.float32),
        cold=trust == 0,
    )


def _reasons(state: State, who: _Listeners, top: I64, cf: F32) -> npt.NDArray[np.int8]:
    """For the chosen tracks only: which of the four terms is largest (cold: popular)."""
    vectors = state.items.content[top]  # (n, k, dims)
    terms = np.stack(
        [
            who.cf[:, None] * cf,
            np.einsum("nkd,nd->nk", vectors, who.sound),
            who.genre[np.arange(len(top))[:, None], state.items.genre[top]] * state.popularity[top],
            np.einsum("nkd,nd->nk", vectors, who.now),
        ]
    )
    reasons: npt.NDArray[np.int8] = np.argmax(terms, axis=0).astype(np.int8)
    reasons[who.cold] = REASONS.index("popular")
    return reasons


def _unit(vector: F32) -> F32:
    norm = float(np.linalg.norm(vector))
    return np.asarray(vector / norm if norm > 0 else vector, np.float32)


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
