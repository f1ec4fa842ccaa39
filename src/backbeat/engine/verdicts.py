"""A slice's verdicts, written once for every engine: valid, dead, late or on time.

For one slice of one partition, in its order: records of an unknown topic are dead letters
(``unknown_topic``); the rest are decoded and validated (bad ones dead letters with the
reason); listens are completed from the catalog when there is one; events stamped further
than ``max_future_ms`` ahead of the wall clock are dead letters; then the partition's
watermark judges each event (``eventtime.py``), and the late ones are dead letters counted as
late. The embedded engine calls :func:`judge` on its thread; the Spark engine calls it on the
executors, on each task's partition (``spark/prepare.py``), so both give the same verdicts.

Next: ``pipeline.py`` and ``spark/prepare.py`` (the callers), ``dedup.py`` (what follows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from backbeat.engine.enrich import Enricher
from backbeat.engine.eventtime import Watermarks
from backbeat.events.codec import DeadLetter, decode_batch, validate_table
from backbeat.events.schema import Topic, parse_topic
from backbeat.transport.base import ArrowSlice, RawSlice, Slice


@dataclass(slots=True)
class Verdicts:
    """What became of one slice.

    Attributes:
        topic: backbeat's topic, or None when the slice's topic is not one of them.
        table: the on-time valid events, in order (contract columns).
        offsets: their offsets.
        horizons: each one's watermark (what judged it on time; de-dup reads it).
        dead: records that broke the contract, or came from the future.
        late: events behind their partition's watermark.
    """

    topic: Topic | None
    table: pa.Table | None = None
    offsets: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    horizons: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dead: list[DeadLetter] = field(default_factory=list)
    late: list[DeadLetter] = field(default_factory=list)


def judge(
    piece: Slice,
    watermarks: Watermarks,
    lateness_ms: int,
    max_future_ms: int | None,
    now_ms: int,
    enricher: Enricher | None = None,
) -> Verdicts:
    """The verdicts on ``piece``; advances its partition in ``watermarks``."""
    topic = parse_topic(piece.topic)
    if topic is None:
        reason = f"unknown_topic: {piece.topic!r} is not one of backbeat's topics"
        raws = piece.payloads if isinstance(piece, RawSlice) else raws_at(piece, piece.offsets)
        dead = [
            DeadLetter(bytes(r), int(o), reason)
            for r, o in zip(raws, piece.offsets.tolist(), strict=True)
        ]
        return Verdicts(None, dead=dead)
    if isinstance(piece, RawSlice):
        decoded = piece.decoded or decode_batch(topic, piece.payloads, piece.offsets)
    else:
        decoded = validate_table(
            topic, piece.table, piece.offsets, lambda idx: _rows_json(piece, idx)
        )
    table, offsets, dead = decoded.table, decoded.offsets, list(decoded.dead)
    if topic is Topic.LISTEN and enricher is not None:
        table = enricher.listens(table)
    ts = table.column("ts").to_numpy()
    if max_future_ms is not None:
        future = ts > now_ms + max_future_ms
        if future.any():
            reason = f"out_of_range: ts is more than {max_future_ms} ms in the future"
            idx = np.flatnonzero(future)
            raws = raws_at(piece, offsets[idx])
            dead += [
                DeadLetter(raw, int(offsets[i]), reason)
                for i, raw in zip(idx.tolist(), raws, strict=True)
            ]
            table, offsets, ts = table.filter(pa.array(~future)), offsets[~future], ts[~future]
    horizons = watermarks.advance(topic.value, piece.partition, ts)
    late = ts < horizons
    letters: list[DeadLetter] = []
    if late.any():
        idx = np.flatnonzero(late)
        behind = f"more than {lateness_ms} ms behind the partition's event time"
        letters = [
            DeadLetter(raw, int(offsets[i]), f"late: ts {int(ts[i])} is {behind}")
            for i, raw in zip(idx.tolist(), raws_at(piece, offsets[idx]), strict=True)
        ]
        table, offsets, horizons = table.filter(pa.array(~late)), offsets[~late], horizons[~late]
    return Verdicts(topic, table, offsets, horizons, dead, letters)


def _rows_json(piece: ArrowSlice, idx: list[int]) -> list[bytes]:
    """Rows of a typed slice as JSON, for dead letters (any columns, as they came)."""
    rows = piece.table.take(pa.array(idx, pa.int64())).to_pylist()
    return [json.dumps(r, default=str, sort_keys=False).encode() for r in rows]


def raws_at(piece: Slice, offsets: npt.NDArray[np.int64]) -> list[bytes]:
    """Raw bytes of the messages at ``offsets`` (for dead letters)."""
    idx = np.searchsorted(piece.offsets, offsets).tolist()
    if isinstance(piece, RawSlice):
        return [bytes(piece.payloads[i]) for i in idx]
    return _rows_json(piece, idx)
