"""The reference decoder: raw JSON messages to Arrow with pyarrow and msgspec, no C of our own.

A batch is parsed at once with ``pyarrow.json`` when it is plainly well formed (one ``{...}``
per message, no raw newline, none empty or too large); otherwise, or when that parse fails,
each message is classified on its own with msgspec, whose typed decoder names the exact
problem ("Expected `int`, got `str` - at `$.ts`"), and the good ones are parsed together.
Either way the contract's rules come after (``results.validate_table``). This path defines
what decoding means: the C core (``c_core.py``) must agree with it on whatever it takes, and
hands it every record it declines.

Next: ``results.py`` (the result and the rules), ``c_core.py``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any, Final

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from backbeat.events.codec.results import (
    DeadLetter,
    Decoded,
    Offsets,
    empty,
    loose_schema,
    validated,
)
from backbeat.events.schema import FIELDS, MAX_RECORD_BYTES, Topic, arrow_schema

_NEWLINE: Final = ord("\n")
_OPEN_BRACE: Final = ord("{")


def decode_batch(topic: Topic, payloads: Sequence[bytes], offsets: Offsets) -> Decoded:
    """The whole batch through ``pyarrow.json``, or message by message if that fails."""
    n = len(payloads)
    if n == 0:
        return empty(topic)
    joined = b"\n".join(payloads)
    # Record bounds from the joined bytes (NumPy, without the GIL): with exactly n - 1
    # newlines, no record holds one and they are the joins.
    buf = np.frombuffer(joined, dtype=np.uint8)
    breaks = np.flatnonzero(buf == _NEWLINE)
    if len(breaks) != n - 1:
        return _decode_slow(topic, payloads, offsets)
    starts = np.concatenate(([0], breaks + 1))
    sizes = np.append(breaks, len(buf)) - starts
    if (
        ((sizes == 0) | (sizes > MAX_RECORD_BYTES)).any()
        # pyarrow.json crashes on some first tokens other than "{"
        or (buf[starts] != _OPEN_BRACE).any()
    ):
        return _decode_slow(topic, payloads, offsets)
    table = _parse(topic, joined)
    if table is None or table.num_rows != n or not _all_finite(table):
        return _decode_slow(topic, payloads, offsets)
    return validated(topic, table, payloads, offsets, [])


def _all_finite(table: pa.Table) -> bool:
    """pyarrow.json reads the non-JSON NaN / Infinity; the slow path rejects them by name."""
    return all(
        pc.all(pc.is_finite(col), skip_nulls=True).as_py() is not False
        for col in table.columns
        if pa.types.is_floating(col.type)
    )


def _parse(topic: Topic, data: bytes) -> pa.Table | None:
    """Parse NDJSON with the topic's types; every field nullable (rules come after)."""
    loose = loose_schema(topic)
    try:
        table = pj.read_json(
            io.BytesIO(data),
            read_options=pj.ReadOptions(block_size=max(1 << 20, MAX_RECORD_BYTES * 2)),
            parse_options=pj.ParseOptions(
                explicit_schema=loose, unexpected_field_behavior="ignore"
            ),
        )
        table.validate(full=True)  # pyarrow.json lets invalid UTF-8 inside strings through
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return table.select(loose.names)


def _decode_slow(topic: Topic, payloads: Sequence[bytes], offsets: Offsets) -> Decoded:
    """Classify every message on its own, then parse the good ones as one batch."""
    decoder = _typed_decoder(topic)
    dead: list[DeadLetter] = []
    keep: list[int] = []
    for i, raw in enumerate(payloads):
        reason = _precheck(raw) or _msgspec_reason(decoder, raw)
        if reason is None:
            keep.append(i)
        else:
            dead.append(DeadLetter(bytes(raw), int(offsets[i]), reason))
    good = [payloads[i] for i in keep]
    good_offsets = offsets[np.asarray(keep, dtype=np.int64)]
    schema = arrow_schema(topic)
    table = _parse(topic, b"\n".join(good)) if good else schema.empty_table()
    if table is None or table.num_rows != len(good):
        # msgspec accepted something Arrow will not parse: find it record by record.
        tables, kept, kept_offsets = [], [], []
        for raw, off in zip(good, good_offsets.tolist(), strict=True):
            one = _parse(topic, raw)
            if one is None or one.num_rows != 1:
                dead.append(
                    DeadLetter(bytes(raw), off, "wrong_type: not parseable as the topic schema")
                )
            else:
                tables.append(one)
                kept.append(raw)
                kept_offsets.append(off)
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        good, good_offsets = kept, np.asarray(kept_offsets, dtype=np.int64)
    return validated(topic, table, good, good_offsets, dead)


def _precheck(raw: bytes) -> str | None:
    if len(raw) == 0 or raw.isspace():
        return "empty: no record"
    if len(raw) > MAX_RECORD_BYTES:
        return f"too_large: {len(raw)} bytes > {MAX_RECORD_BYTES}"
    if b"\n" in raw:
        return "not_json: raw newline inside a record"
    return None


_I64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_I32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
_PY_TYPES: Final[dict[pa.DataType, Any]] = {
    pa.int64(): _I64,
    pa.int32(): _I32,
    pa.float64(): float,
    pa.string(): str,
    pa.bool_(): bool,
}


@cache
def _typed_decoder(topic: Topic) -> msgspec.json.Decoder[Any]:
    """A msgspec decoder whose types mirror the topic's Arrow schema (types only, no rules)."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for spec in FIELDS[topic]:
        py = _PY_TYPES[spec.type]
        fields.append((spec.name, py | None, None))
    struct = msgspec.defstruct(f"{topic.value}_wire", fields, kw_only=True)
    return msgspec.json.Decoder(struct)


def _msgspec_reason(decoder: msgspec.json.Decoder[Any], raw: bytes) -> str | None:
    try:
        decoder.decode(raw)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        code = "out_of_range" if (">=" in msg or "<=" in msg) else "wrong_type"
        # The typed decoder judges the first value before the rest of the line: a CSV line
        # ("6potE...,2023-...") starts with a number, so it must be JSON as a whole first.
        return _syntax_reason(raw) or f"{code}: {msg[:200]}"
    except msgspec.DecodeError as exc:
        return f"not_json: {str(exc)[:200]}"
    except UnicodeDecodeError:
        return "not_json: invalid UTF-8"
    return None


def _syntax_reason(raw: bytes) -> str | None:
    """``not_json: ...`` if ``raw`` is not one JSON document, else None (whatever it holds)."""
    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return f"not_json: {str(exc)[:200]}"
    except UnicodeDecodeError:
        return "not_json: invalid UTF-8"
    except msgspec.ValidationError:  # valid JSON: a number out of range, say
        return None
    return None
