"""The trained model: ALS factors of listeners and tracks, the tracks, and how to keep it.

:func:`train` fits ``implicit``'s alternating least squares on a :class:`History`'s confidence
(one BLAS thread: ``blas.py``). A :class:`Model` carries what ranking needs and nothing a
store already has: the factors, the tracks with their content vectors, the listener ids of the
factor rows, and where it stands (``version`` on the shelf, ``trained_at``, ``through_batch``:
the last committed batch whose listens it was trained on). :meth:`Model.to_bytes` writes NumPy
arrays and an Arrow table into one ``.npz`` (never a pickle: a model file is data, loading it
runs no code); :meth:`Model.from_bytes` checks every array's shape against the others.

Next: ``rank.py`` (using it), ``service.py`` (keeping it fresh), ``store.py`` (the shelf).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.ipc as ipc

from backbeat.errors import StoreError
from backbeat.recommend.blas import als, one_blas_thread
from backbeat.recommend.history import History
from backbeat.recommend.items import Items, index_of

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Params:
    """ALS's knobs."""

    factors: int = 64
    iterations: int = 15
    regularization: float = 0.05
    seed: int = 0


@dataclass(frozen=True, eq=False)
class Model:
    """Trained factors and the tracks they score (see the module docstring)."""

    items: Items
    user_ids: I64  # factor row -> listener id
    user_factors: F32
    item_factors: F32  # rows = items (tracks added later have zero rows until fitted)
    params: Params
    trained_at: int  # epoch ms
    through_batch: int
    version: int = 0  # 0: not shelved yet

    def shelved(self, version: int) -> Model:
        return replace(self, version=version)

    def to_bytes(self) -> bytes:
        """The model as one ``.npz`` (NumPy arrays; the tracks as an Arrow stream)."""
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, self.items.table.schema) as writer:
            writer.write_table(self.items.table)
        about = {
            "format": FORMAT,
            "genres": list(self.items.genres),
            "params": vars_of(self.params),
            "trained_at": self.trained_at,
            "through_batch": self.through_batch,
        }
        out = io.BytesIO()
        np.savez(
            out,
            about=np.frombuffer(json.dumps(about).encode(), np.uint8),
            items=np.frombuffer(sink.getvalue().to_pybytes(), np.uint8),
            genre=self.items.genre,
            content=self.items.content,
            user_ids=self.user_ids,
            user_factors=self.user_factors,
            item_factors=self.item_factors,
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, version: int) -> Model:
        """The model :meth:`to_bytes` wrote.

        Raises:
            StoreError: not a model this backbeat reads, or inconsistent.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                about = json.loads(arrays["about"].tobytes())
                table = ipc.open_stream(arrays["items"].tobytes()).read_all().combine_chunks()
                parts = {name: arrays[name] for name in arrays.files}
        except (ValueError, KeyError, OSError, pa.ArrowInvalid) as exc:
            raise StoreError(f"model version {version} cannot be read: {exc}") from exc
        if about.get("format") != FORMAT:
            raise StoreError(f"model version {version} has format {about.get('format')}")
        n_items, n_users = table.num_rows, len(parts["user_ids"])
        if (
            parts["item_factors"].shape[0] != n_items
            or parts["content"].shape[0] != n_items
            or parts["genre"].shape != (n_items,)
            or parts["user_factors"].shape[0] != n_users
        ):
            raise StoreError(f"model version {version} is inconsistent (array shapes differ)")
        items = Items(
            table=table,
            genres=tuple(about["genres"]),
            genre=parts["genre"],
            content=parts["content"],
            index=index_of(table),
        )
        return cls(
            items=items,
            user_ids=parts["user_ids"],
            user_factors=parts["user_factors"],
            item_factors=parts["item_factors"],
            params=Params(**about["params"]),
            trained_at=int(about["trained_at"]),
            through_batch=int(about["through_batch"]),
            version=version,
        )


def vars_of(params: Params) -> dict[str, Any]:
    return {name: getattr(params, name) for name in Params.__dataclass_fields__}


def train(history: History, items: Items, params: Params, through_batch: int) -> Model:
    """ALS fitted on ``history`` (every track of ``items``) from scratch."""
    model = als(
        factors=params.factors,
        iterations=params.iterations,
        regularization=params.regularization,
        seed=params.seed,
    )
    confidence = history.confidence()
    with one_blas_thread():
        model.fit(confidence, show_progress=False)
    return Model(
        items=items,
        user_ids=history.user_ids.copy(),
        user_factors=np.ascontiguousarray(model.user_factors, np.float32),
        item_factors=np.ascontiguousarray(model.item_factors, np.float32),
        params=params,
        trained_at=int(time.time() * 1000),
        through_batch=through_batch,
    )
