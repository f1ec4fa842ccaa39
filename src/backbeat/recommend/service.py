"""The model a process serves, kept fresh as batches commit, without a retrain.

A :class:`Recommender` holds the newest shelved model and the history it ranks from, as one
immutable :class:`Served` value swapped whole, so a request never sees half an update and
never waits for one. :meth:`Recommender.refresh` does two things:

1. a newer version on the shelf (a retrain, by ``backbeat recommend train`` or the schedule) is
   loaded, with the store's listens up to the batch it was trained through, then step 2 for
   the rest: a restarted process serves what it served before it stopped;
2. the listens of batches committed since (the reader's ``Interactions`` of those batches)
   are folded in: the listeners in them get new factors from ALS's least-squares step against
   the fixed track factors (``implicit``'s ``recalculate_user``), tracks heard for the first
   time get factors from their listeners (``recalculate_item``), and recently heard tracks
   move out of their recommendations.

Updates live in memory: they are a function of the shelved model and the store's listens, so
a process that restarts (even after kill -9) rebuilds them from the store. The process that
serves applies them: the engine's own process under ``stream --recommend`` and ``demo`` (the
web process asks it over its socket), the ``serve --recommend`` process otherwise.
:class:`Follower` calls ``refresh`` as commits are announced, and retrains on a schedule.

Next: ``reader.py`` (the named queries), ``rank.py``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import pyarrow as pa

from backbeat.errors import BackbeatError, NotFoundError, StoreNotReadyError
from backbeat.recommend import store
from backbeat.recommend.blas import als, one_blas_thread, one_blas_thread_for_good
from backbeat.recommend.history import History
from backbeat.recommend.items import build_items
from backbeat.recommend.model import Model, Params, train
from backbeat.recommend.rank import REASONS, Ranked, State, rank, similar
from backbeat.simulate.catalog import Catalog
from backbeat.sinks import queries as q
from backbeat.sinks.shelf import Shelf

log = logging.getLogger(__name__)

RECENT_MS: Final = 7 * 86_400_000
"""Tracks heard this long before the store's latest listen are not recommended again."""
RETRY_S: Final = 5.0
"""A follower's first training, failed (no listens yet...), is tried again this much later."""


@dataclass(frozen=True, eq=False)
class Served:
    """One consistent view: a model, the history folded into it, and where both stand."""

    model: Model
    state: State
    through_batch: int
    updates: int  # listeners re-fitted since the model loaded

    @functools.cached_property
    def now_ms(self) -> int:
        data = self.state.history.last.data
        return int(data.max()) if len(data) else 0


def latest_batch(reader: q.Reader) -> int:
    return int(reader.one(q.LatestBatch()).get("b") or 0)


def train_on(reader: q.Reader, catalog: Catalog | None, params: Params) -> Model:
    """A model trained on every listen the store holds now (not shelved)."""
    upto = latest_batch(reader)
    rows = reader.run(q.Interactions(batches=(0, upto)))
    if rows.num_rows == 0:
        raise StoreNotReadyError("the store holds no listens to learn from yet")
    items = build_items(catalog, rows)
    history, _ = History.empty(len(items)).add(rows, items)
    log.info(
        "recommender: fitting ALS on %d listeners x %d tracks (through batch %d)",
        history.n_users, len(items), upto,
    )  # fmt: skip
    return train(history, items, params, upto)


class Recommender:
    """Recommendations from the newest shelved model and the store's listens (thread-safe)."""

    def __init__(self, reader: q.Reader, shelf: Shelf, recent_ms: int = RECENT_MS) -> None:
        one_blas_thread_for_good()
        self._reader = reader
        self._shelf = shelf
        self._recent_ms = recent_ms
        self._served: Served | None = None
        self._lock = threading.Lock()  # one refresh at a time; readers never take it

    @property
    def served(self) -> Served | None:
        return self._served

    def refresh(self, upto: int | None = None) -> bool:
        """Load a newer shelved model, fold in newly committed batches (up to batch ``upto``,
        by default all); True if anything changed. Errors leave what is served as it was."""
        with self._lock:
            served = self._served
            upto = latest_batch(self._reader) if upto is None else upto
            version = self._shelf.version(store.NAME)
            if version is not None and (served is None or version != served.model.version):
                model = store.load(self._shelf)
                if model is not None and model.through_batch <= upto:
                    served = self._fresh(model)
                elif model is not None:  # trained on batches this store no longer has
                    log.warning(
                        "recommender: model version %d was trained through batch %d, the store "
                        "holds %d batches (was it emptied?): not served; retrain",
                        model.version, model.through_batch, upto,
                    )  # fmt: skip
            if served is None:
                return False
            if upto > served.through_batch:
                served = self._fold(served, upto)
            changed = served is not self._served
            self._served = served
            return changed

    def _fresh(self, model: Model) -> Served:
        rows = self._reader.run(q.Interactions(batches=(0, model.through_batch)))
        items = model.items.grow(rows)
        history, _ = History.empty(len(items)).add(rows, items)
        users = np.zeros((history.n_users, model.params.factors), np.float32)
        at = [history.rows.get(int(uid), -1) for uid in model.user_ids]
        known = np.asarray(at) >= 0
        users[np.asarray(at)[known]] = model.user_factors[known]
        tracks = _grown(model.item_factors, len(items))
        served = Served(model, State.of(items, history, users, tracks), model.through_batch, 0)
        log.info(
            "recommender: model version %d (through batch %d)", model.version, served.through_batch
        )
        return served

    def _fold(self, served: Served, upto: int) -> Served:
        rows = self._reader.run(q.Interactions(batches=(served.through_batch, upto)))
        log.debug("recommender: folding batches (%d, %d]", served.through_batch, upto)
        if rows.num_rows == 0:
            return replace(served, through_batch=upto)
        state = served.state
        items = state.items.grow(rows)
        history, touched = state.history.add(rows, items)
        users = _grown(state.user_factors, history.n_users)
        tracks = _grown(state.item_factors, len(items))
        fit = als(
            factors=served.model.params.factors,
            iterations=1,
            regularization=served.model.params.regularization,
            seed=0,
            threads=1,  # an update shares the process with an engine or a server: one core
        )
        fit.user_factors, fit.item_factors = users, tracks
        with one_blas_thread():
            new = np.arange(len(state.items), len(items))
            if len(new):
                tracks[new] = fit.recalculate_item(new, history.confidence().T.tocsr()[new])
            users[touched] = fit.recalculate_user(touched, history.confidence(touched))
        state = State.of(items, history, users, tracks)
        return Served(served.model, state, upto, served.updates + len(touched))

    def _need(self) -> Served:
        served = self._served
        if served is None:
            raise StoreNotReadyError(
                "no recommendation model yet: run `backbeat recommend train` on this store"
            )
        return served

    def recommendations(self, user: int, limit: int) -> pa.Table:
        served = self._need()
        history = served.state.history
        row = history.rows.get(user, -1)
        since = served.now_ms - self._recent_ms
        exclude = [history.heard_since(row, since) if row >= 0 else np.zeros(0, np.int32)]
        ranked = rank(served.state, np.asarray([row], np.int64), limit, exclude)
        return _table(served, ranked)

    def similar(self, track: str, limit: int) -> pa.Table:
        served = self._need()
        item = served.state.items.find(track)
        if item is None:
            raise NotFoundError(f"no track {track!r} in the model's catalog or history")
        return _table(served, similar(served.state, item, limit))

    def info(self) -> pa.Table:
        served = self._served
        rows = [] if served is None else [{
            "model_version": served.model.version,
            "trained_at": served.model.trained_at,
            "through_batch": served.through_batch,
            "users": served.state.history.n_users,
            "tracks": len(served.state.items),
            "updates": served.updates,
        }]  # fmt: skip
        return pa.Table.from_pylist(rows, schema=INFO)


INFO: Final = pa.schema(
    [
        ("model_version", pa.int64()),
        ("trained_at", pa.int64()),
        ("through_batch", pa.int64()),
        ("users", pa.int64()),
        ("tracks", pa.int64()),
        ("updates", pa.int64()),
    ]
)


def _grown(factors: np.ndarray, rows: int) -> np.ndarray:
    """A copy of ``factors`` with zero rows up to ``rows``."""
    out = np.zeros((rows, factors.shape[1]), np.float32)
    out[: len(factors)] = factors
    return out


def _table(served: Served, ranked: Ranked) -> pa.Table:
    picked = ranked.tracks[0]
    keep = picked >= 0
    rows = picked[keep]
    items = served.state.items.table.take(pa.array(rows, pa.int64()))
    n = len(rows)
    return pa.table(
        {
            "rank": pa.array(np.arange(1, n + 1, dtype=np.int32)),
            "track": items["track"],
            "track_id": items["track_id"],
            "artist": items["artist"],
            "song": items["song"],
            "genre": items["genre"],
            "score": pa.array(ranked.scores[0][keep].astype(np.float64)),
            "reason": pa.array([REASONS[r] for r in ranked.reasons[0][keep]], pa.string()),
            "model_version": pa.array(np.full(n, served.model.version, np.int64)),
            "trained_at": pa.array(np.full(n, served.model.trained_at, np.int64)),
            "through_batch": pa.array(np.full(n, served.through_batch, np.int64)),
        }
    )


class Follower:
    """A thread that refreshes a recommender as the store announces commits (or every
    ``poll_s`` when it announces none), and, with ``retrain_s``, trains and shelves a new
    model that often."""

    def __init__(
        self,
        recommender: Recommender,
        reader: q.Reader,
        *,
        poll_s: float = 0.25,
        retrain_s: float | None = None,
        retrain: tuple[Shelf, Catalog | None, Params] | None = None,
    ) -> None:
        self._recommender = recommender
        self._reader = reader
        self._poll_s = poll_s
        self._retrain_s = retrain_s
        self._retrain = retrain
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recommender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        now = time.monotonic
        next_train, retry_at = now() + (self._retrain_s or 0.0), 0.0
        while not self._stop.is_set():
            try:
                self._recommender.refresh()
                if self._retrain is not None and self._retrain_s is not None:
                    cold = self._recommender.served is None and latest_batch(self._reader) > 0
                    if (cold and now() >= retry_at) or now() >= next_train:
                        shelf, catalog, params = self._retrain
                        retry_at = now() + RETRY_S
                        model = store.save(shelf, train_on(self._reader, catalog, params))
                        log.info("recommender: trained version %d", model.version)
                        next_train = now() + self._retrain_s
                        self._recommender.refresh()
            except BackbeatError as exc:
                log.warning("recommender: %s", exc)
            self._stop.wait(self._poll_s)
