"""Edge cases found in review: each one used to hang, crash or let a duplicate through."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from backbeat.engine.base import EngineSettings
from backbeat.engine.dedup import Deduplicator
from backbeat.engine.eventtime import NO_TS, Watermarks
from backbeat.engine.pipeline import Pipeline
from backbeat.events import Topic, arrow_schema, decode_batch, encode_records
from backbeat.sinks.csv import CsvSink
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.sinks.queries import DeadLetterRecords
from backbeat.transport.base import ArrowSlice, Slice, Source
from backbeat.transport.jsonl import JsonlSource
from tests.events.samples import record


def _dead(store: DuckDBStore) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = (
        store.reader().run(DeadLetterRecords(after=0, upto=2**40)).to_pylist()
    )
    return rows


def _write(path: Path, records: list[dict[str, object]], newline_at_end: bool = True) -> None:
    data = b"\n".join(encode_records(records))
    path.write_bytes(data + (b"\n" if newline_at_end else b""))


def test_a_last_line_without_newline_is_read_and_the_run_ends(tmp_path: Path) -> None:
    _write(tmp_path / "auth_events.jsonl", [record(Topic.AUTH, i) for i in range(5)], False)
    store = DuckDBStore.at(str(tmp_path / "store"))
    source = JsonlSource([tmp_path / "auth_events.jsonl"])
    report = Pipeline(source, store).run(timeout=30)
    assert report.stopped_by == "exhausted"
    assert report.accepted == 5


def test_following_waits_for_the_newline(tmp_path: Path) -> None:
    path = tmp_path / "auth_events.jsonl"
    _write(path, [record(Topic.AUTH, i) for i in range(3)], False)
    source = JsonlSource([path], follow=True)
    source.open({})
    assert sum(len(s.offsets) for s in source.poll(100)) == 2
    with path.open("ab") as fh:
        fh.write(b"\n")
    assert sum(len(s.offsets) for s in source.poll(100)) == 1
    assert not source.exhausted


def test_session_keys_match_across_batches_whatever_their_packing() -> None:
    def table(rows: list[tuple[str, int, int]]) -> pa.Table:
        ids, sessions, items = zip(*rows, strict=True)
        return pa.table(
            {
                "eventId": pa.array(ids),
                "sessionId": pa.array(sessions, pa.int64()),
                "itemInSession": pa.array(items, pa.int32()),
                "ts": pa.array([10] * len(rows), pa.int64()),
            }
        )

    dedup = Deduplicator()
    assert dedup.fresh_mask("t", "p", table([("a", 5, 1)]), np.full(1, NO_TS), NO_TS).tolist() == [
        True
    ]
    second = table([("b", 5, 1), ("c", 7, 2**30)])  # the big item forces string keys
    assert dedup.fresh_mask("t", "p", second, np.full(2, NO_TS), NO_TS).tolist() == [False, True]
    third = table([("d", 7, 2**30), ("e", 5, 1)])
    restarted = Deduplicator(dedup.snapshot())
    assert restarted.fresh_mask("t", "p", third, np.full(2, NO_TS), NO_TS).tolist() == [
        False,
        False,
    ]


def test_events_from_the_future_are_dead_letters(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    ok = record(Topic.AUTH, 1, ts=now - 1000)
    ahead = record(Topic.AUTH, 2, ts=now + 3 * 86_400_000, eventId="a-x-2")
    _write(tmp_path / "auth_events.jsonl", [ok, ahead, record(Topic.AUTH, 3, ts=now)])
    store = DuckDBStore.at(str(tmp_path / "store"))
    report = Pipeline(JsonlSource([tmp_path / "auth_events.jsonl"]), store).run()
    assert (report.accepted, report.dead, report.late) == (2, 1, 0)
    reasons = [r["reason"] for r in _dead(store)]
    assert reasons == ["out_of_range: ts is more than 86400000 ms in the future"]


class _Typed(Source):
    def __init__(self, table: pa.Table) -> None:
        self._table: pa.Table | None = table

    def open(self, positions: Mapping[str, int]) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return self._table is None

    def poll(self, max_events: int) -> list[Slice]:
        table, self._table = self._table, None
        if table is None:
            return []
        offsets = np.arange(table.num_rows, dtype=np.int64)
        return [ArrowSlice("auth_events", "typed", table, offsets, table.num_rows)]


def test_typed_slices_with_nulls_or_missing_columns_become_dead_letters(tmp_path: Path) -> None:
    good = decode_batch(
        Topic.AUTH, encode_records([record(Topic.AUTH, i) for i in range(4)]), np.arange(4)
    ).table
    loose = good.cast(pa.schema([f.with_nullable(True) for f in arrow_schema(Topic.AUTH)]))
    broken = (
        loose.set_column(
            loose.schema.get_field_index("sessionId"),
            "sessionId",
            pa.array([1, None, 3, None], pa.int64()),
        )
        .drop_columns(["auth"])
        .slice(0, 4)
    )
    store = DuckDBStore.at(str(tmp_path / "store"))
    report = Pipeline(_Typed(broken), store).run()
    assert (report.accepted, report.dead) == (0, 4)
    dead = _dead(store)
    assert {r["reason"] for r in dead} == {"missing_field: sessionId", "missing_field: auth"}
    assert orjson.loads(dead[0]["raw"])["success"] in (True, False)


def test_an_open_partition_without_events_holds_its_topic_back() -> None:
    marks = Watermarks(10, {}, {})
    marks.advance("listen_events", "a", np.array([1000]))
    opened = {"a": "listen_events", "b": "listen_events"}
    assert marks.watermark("listen_events", opened) is None
    marks.advance("listen_events", "b", np.array([500]))
    assert marks.watermark("listen_events", opened) == 490
    assert marks.watermark("listen_events", {"a": "listen_events"}) == 990  # b finished
    assert marks.watermark("listen_events", {}) == 490  # all finished: what this run read


def test_a_deleted_csv_is_rebuilt_exactly(tmp_path: Path) -> None:
    records = [record(Topic.LISTEN, i) for i in range(400)]
    _write(tmp_path / "listen_events.jsonl", records)
    csv = tmp_path / "results.csv"
    store = DuckDBStore.at(str(tmp_path / "store"))
    settings = EngineSettings(max_batch_events=50)
    source = JsonlSource([tmp_path / "listen_events.jsonl"])
    Pipeline(source, store, [CsvSink(csv)], settings).run()
    before = csv.read_bytes()
    assert before.count(b"\n") > 10
    csv.unlink()
    Pipeline(JsonlSource([tmp_path / "listen_events.jsonl"]), store, [CsvSink(csv)], settings)
    assert csv.read_bytes() == before
