"""The stream's metrics in process: a store or sink failing a batch is counted before the run
raises, the watermark delay grows while nothing commits, dead letters are counted by kind,
and JSON log lines carry their fields.

Next: ``test_stream_metrics.py`` (scraped from a running ``backbeat stream``),
``backbeat.observe``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from backbeat.engine.batch import count_reasons
from backbeat.engine.pipeline import Pipeline
from backbeat.errors import StoreError
from backbeat.events.schema import Topic
from backbeat.observe import logs
from backbeat.observe.metrics import StreamMetrics
from backbeat.simulate.simulator import SimulatorSettings
from backbeat.sinks.base import BatchStats, Guarantee, ResultSink, SinkSpec
from backbeat.sinks.registry import open_store
from backbeat.wiring.pipeline import jsonl_source
from backbeat.wiring.simulation import write_jsonl_run


def _value(metrics: StreamMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


class Broken(ResultSink):
    """A sink whose every write fails."""

    name = "broken"
    guarantee = Guarantee.EXACTLY_ONCE

    @property
    def key(self) -> str:
        return "broken"

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> ResultSink:
        return cls()

    def write(
        self,
        batch_id: int,
        partials: Mapping[str, pa.Table],
        events: Mapping[Topic, pa.Table],
        dead_letters: pa.Table,
    ) -> None:
        raise StoreError("the broken sink refuses every batch")


def test_a_failing_sink_is_counted_before_the_run_stops(tmp_path: Path) -> None:
    run = SimulatorSettings(
        users=30,
        seed=2,
        start=datetime(2026, 1, 5, tzinfo=UTC),
        end=datetime(2026, 1, 5, 1, tzinfo=UTC),
    )
    write_jsonl_run(run, tmp_path / "in", progress=False)
    metrics = StreamMetrics()
    store = open_store(str(tmp_path / "store"))
    try:
        engine = Pipeline(
            jsonl_source([tmp_path / "in"], follow=False),
            store,
            [Broken()],
            on_batch=metrics.committed,
            on_error=metrics.failed,
        )
        with pytest.raises(StoreError, match="refuses every batch"):
            engine.run()
        engine.close()
    finally:
        store.close()
    assert _value(metrics, "backbeat_sink_errors_total", sink="broken") == 1
    assert _value(metrics, "backbeat_sink_errors_total", sink="store") is None
    assert _value(metrics, "backbeat_batches_total") == 0  # the batch never completed


def test_the_watermark_delay_grows_while_nothing_commits() -> None:
    metrics = StreamMetrics(lag=lambda: {"kafka:listen_events:2": 7, "jsonl-odd": 1})
    now_ms = int(time.time() * 1000)
    stats = BatchStats(events_in=5, accepted=3, seconds=0.2, phases={"commit": 0.1},
                       watermarks={"listen_events": now_ms - 60_000, "auth_events": None})  # fmt: skip
    count_reasons(
        ["late: ts 5 is 3 min behind", "not_json: x", "not_json: y", ":"], stats.dead_reasons
    )
    metrics.committed(stats)
    first = _value(metrics, "backbeat_watermark_delay_seconds", topic="listen_events")
    assert first is not None
    assert 59 < first < 120
    assert _value(metrics, "backbeat_watermark_delay_seconds", topic="auth_events") is None
    deadline = time.monotonic() + 10
    later = first
    while later <= first and time.monotonic() < deadline:  # the clock moves on, the mark not
        later = _value(metrics, "backbeat_watermark_delay_seconds", topic="listen_events") or 0
    assert later > first
    assert _value(metrics, "backbeat_dead_letters_total", reason="not_json") == 2
    assert _value(metrics, "backbeat_dead_letters_total", reason="late") == 1
    assert _value(metrics, "backbeat_dead_letters_total", reason="unknown") == 1
    assert _value(metrics, "backbeat_batch_seconds_sum") == pytest.approx(0.3)
    assert _value(metrics, "backbeat_consumer_lag", topic="listen_events", partition="2") == 7
    assert _value(metrics, "backbeat_consumer_lag", topic="jsonl-odd", partition="") == 1


def test_json_log_lines_carry_their_fields(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # put back after the test
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logs, "_current", logs.current())
    logs.configure("INFO", "json")
    assert logs.uvicorn_log_config() is None  # uvicorn's loggers reach the JSON handler
    logging.getLogger("backbeat.test").info("batch %d done", 7, extra={"batch_id": 7})
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["message"] == "batch 7 done"
    assert (record["level"], record["logger"], record["batch_id"]) == ("INFO", "backbeat.test", 7)
    assert datetime.fromisoformat(record["time"]).tzinfo is not None


def test_the_exported_families_are_the_deploy_contract() -> None:
    """What Grafana and Prometheus in ``deploy/`` may query (``tests/support/metrics_names``)
    is what a run exports, no more, no less."""
    from backbeat.observe.metrics import NAMES
    from tests.support.metrics_names import STREAM

    metrics = StreamMetrics(lag=lambda: {"kafka:listen_events:0": 1})
    metrics.committed(BatchStats(dead_reasons={"late": 1}, watermarks={"listen_events": 1}))
    metrics.failed("store", RuntimeError())
    exported = {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in metrics.registry.collect()
    }
    assert exported == set(NAMES) == set(STREAM)
