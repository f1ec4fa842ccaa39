"""What each listener's listens say about each track, as sparse matrices that grow by batches.

A :class:`History` holds, per (listener, track) pair of the ``Interactions`` query, the summed
weight of the listens (``weight``: completed and % listened count for, a quick skip against)
and when the pair was last heard (``last``), as two CSR matrices over the same rows (listener
ids, in first-seen order) and columns (rows of :class:`~backbeat.recommend.items.Items`).
:meth:`History.add` folds more ``Interactions`` rows in: weights add, last times take the
maximum, so folding a store's batches one by one equals reading them at once (the query's rows
are additive partials). :meth:`History.confidence` is what ALS fits: the log of the weight,
signed, so a track a listener skips is negative feedback.

Next: ``model.py`` (fitting), ``rank.py`` (excluding what was heard recently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import sparse

from backbeat.recommend.items import Items

I64 = npt.NDArray[np.int64]
CONFIDENCE: Final = 4.0
"""Confidence per log-unit of weight (a completed play weighs 1.5: confidence ~3.7)."""


@dataclass(frozen=True, eq=False)
class History:
    """Listeners' weights and last-heard times per track (immutable: :meth:`add` returns a
    new one)."""

    user_ids: I64  # row -> listener id
    rows: dict[int, int]  # listener id -> row
    weight: sparse.csr_matrix  # float32
    last: sparse.csr_matrix  # int64 epoch ms

    @classmethod
    def empty(cls, n_items: int) -> History:
        shape = (0, n_items)
        return cls(
            user_ids=np.zeros(0, np.int64),
            rows={},
            weight=sparse.csr_matrix(shape, dtype=np.float32),
            last=sparse.csr_matrix(shape, dtype=np.int64),
        )

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def add(self, interactions: pa.Table, items: Items) -> tuple[History, I64]:
        """This history and ``interactions`` (rows of the query; every track in ``items``),
        and the rows of the listeners they name."""
        ids = interactions["user_id"].to_numpy()
        fresh = np.setdiff1d(np.unique(ids), self.user_ids)
        user_ids = np.concatenate([self.user_ids, fresh])
        sorter = np.argsort(user_ids, kind="stable")
        user_row = sorter[np.searchsorted(user_ids, ids, sorter=sorter)]
        rows = self.rows | {int(uid): len(self.user_ids) + i for i, uid in enumerate(fresh)}
        item_row = items.rows_of(interactions["track"])
        shape = (len(user_ids), len(items))
        delta_w = sparse.csr_matrix(
            (interactions["weight"].to_numpy().astype(np.float32), (user_row, item_row)), shape
        )
        delta_l = sparse.csr_matrix(
            (interactions["last_ts"].to_numpy().astype(np.int64), (user_row, item_row)), shape
        )
        history = History(
            user_ids=user_ids,
            rows=rows,
            weight=_resized(self.weight, shape) + delta_w,
            last=_resized(self.last, shape).maximum(delta_l).tocsr(),
        )
        return history, np.unique(user_row)

    def confidence(self, rows: I64 | None = None) -> sparse.csr_matrix:
        """ALS's input for ``rows`` (all by default): sign(w) * CONFIDENCE * log1p(|w|)."""
        weight = self.weight if rows is None else self.weight[rows]
        out = weight.astype(np.float32, copy=True)
        out.data = np.sign(out.data) * CONFIDENCE * np.log1p(np.abs(out.data))
        out.eliminate_zeros()
        return out.tocsr()

    def heard_since(self, row: int, since_ms: int) -> npt.NDArray[np.int32]:
        """The tracks listener ``row`` heard at or after ``since_ms``."""
        start, end = self.last.indptr[row], self.last.indptr[row + 1]
        cols = self.last.indices[start:end]
        out: npt.NDArray[np.int32] = cols[self.last.data[start:end] >= since_ms]
        return out


def _resized(matrix: sparse.csr_matrix, shape: tuple[int, int]) -> sparse.csr_matrix:
    if matrix.shape == shape:
        return matrix
    grown = matrix.copy()
    grown.resize(shape)
    return grown
