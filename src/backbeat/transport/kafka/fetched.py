"""One ``consume()`` result, grouped per partition, and decoded ahead when asked.

:func:`group` reads each field of each message once, column-wise (``map`` over the records,
NumPy for partitions and offsets), and gathers every partition's records in order; errors
(a partition's end among them) are kept apart, in order. It touches no source state, so the
read-ahead thread can run it while the engine works on the batch before, and it can decode
each partition's records there too (``decode=True``): the JSON parse, the heaviest step of a
batch, then overlaps the engine's de-dup, aggregation and commit. The engine uses a decoded
result only when it takes the partition's records whole, which is the usual case; otherwise
(a seek moved the partition on, a start time is still being sought) it decodes what it takes.

Next: ``source.py`` (the caller), ``read_ahead.py`` (the thread).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
from confluent_kafka import Message

from backbeat.events.codec import Decoded, decode_batch
from backbeat.events.schema import parse_topic

Offsets = npt.NDArray[np.int64]
Key = tuple[str, int]
"""(cluster topic, partition)."""


@dataclass(frozen=True, slots=True)
class Group:
    """One partition's records from one ``consume()``, in order."""

    records: list[Message]
    payloads: list[bytes]
    offsets: Offsets
    decoded: Decoded | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A ``consume()`` result: its messages, their records per partition, its errors."""

    messages: list[Message]
    groups: dict[Key, Group]
    errors: list[Message]


def group(messages: list[Message], name_of: Callable[[str], str], decode: bool) -> Fetched:
    """Group ``messages`` per partition; with ``decode``, decode each partition's records
    whose topic (``name_of(cluster topic)``, the backbeat name) is one of backbeat's."""
    flags = list(map(Message.error, messages))
    errors = [m for m, e in zip(messages, flags, strict=True) if e is not None]
    records = [m for m, e in zip(messages, flags, strict=True) if e is None] if errors else messages
    n = len(records)
    if n == 0:
        return Fetched(messages, {}, errors)
    topics = np.array(list(map(Message.topic, records)), dtype=object)
    numbers = np.fromiter(map(Message.partition, records), np.int64, n)
    offsets = np.fromiter(map(Message.offset, records), np.int64, n)
    raw = list(map(Message.value, records))
    # A record without a value is empty (a dead letter downstream).
    values = [b"" if v is None else v for v in raw] if None in raw else cast(list[bytes], raw)
    cuts = np.flatnonzero((numbers[1:] != numbers[:-1]) | (topics[1:] != topics[:-1]))
    parts: dict[Key, tuple[list[Message], list[bytes], list[Offsets]]] = {}
    for start, end in itertools.pairwise([0, *(cuts + 1).tolist(), n]):
        held, payloads, offs = parts.setdefault(
            (str(topics[start]), int(numbers[start])), ([], [], [])
        )
        held.extend(records[start:end])
        payloads.extend(values[start:end])
        offs.append(offsets[start:end])
    groups: dict[Key, Group] = {}
    for key, (held, payloads, offs) in parts.items():
        joined = offs[0] if len(offs) == 1 else np.concatenate(offs)
        topic = parse_topic(name_of(key[0])) if decode else None
        decoded = decode_batch(topic, payloads, joined) if topic is not None else None
        groups[key] = Group(held, payloads, joined, decoded)
    return Fetched(messages, groups, errors)
