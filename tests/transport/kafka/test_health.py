"""BrokerWatch on librdkafka statistics written by hand: when it warns, when it says the broker
is back, and what it ignores (no broker needed; ``test_pause.py`` runs it against a real one).

Next: ``backbeat.transport.kafka.health``, ``test_pause.py``.
"""

from __future__ import annotations

import json
import logging

import pytest
from confluent_kafka import KafkaError

from backbeat.transport.kafka.health import BrokerWatch

BROKER = "127.0.0.1:9092/1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _stats(clock: Clock, rx: int, waiting: int, **more: dict[str, object]) -> str:
    """A snapshot as librdkafka writes it (only the keys the watch reads)."""
    broker = {"name": BROKER, "source": "learned", "rx": rx, "waitresp_cnt": waiting,
              "outbuf_cnt": 0}  # fmt: skip
    return json.dumps({"ts": int(clock.now * 1e6), "brokers": {BROKER: broker, **more}})


def _feed(watch: BrokerWatch, clock: Clock, seconds: int, rx: int, waiting: int) -> None:
    for _ in range(seconds):
        clock.now += 1
        watch.on_stats(_stats(clock, rx, waiting))


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records]


def test_unanswered_requests_warn_once_then_the_answer_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    watch = BrokerWatch("producer", "127.0.0.1:9092", stall_s=5, clock=clock)
    caplog.set_level(logging.INFO, logger="backbeat.transport.kafka.health")
    _feed(watch, clock, 3, rx=10, waiting=0)  # idle, answered
    _feed(watch, clock, 4, rx=10, waiting=3)  # 4 s without an answer: not yet
    assert not caplog.records
    assert watch.unreachable_s is None
    _feed(watch, clock, 6, rx=10, waiting=3)
    assert _records(caplog) == [
        (
            logging.WARNING,
            "Kafka at 127.0.0.1:9092 is not answering the producer: broker 127.0.0.1:9092/1 "
            "has not answered for 5s (3 requests waiting); it keeps retrying",
        )
    ]
    assert watch.unreachable_s == 10  # since the last answer
    _feed(watch, clock, 1, rx=11, waiting=0)
    assert _records(caplog)[1:] == [
        (logging.INFO, "Kafka at 127.0.0.1:9092 answers the producer again after 11.0s unreachable")
    ]
    assert (watch.unreachable_s, watch.outages) == (None, 1)


def test_an_idle_client_and_logical_brokers_never_warn(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    watch = BrokerWatch("consumer", "k:9092", stall_s=5, clock=clock)
    coordinator = {"source": "logical", "rx": 1, "waitresp_cnt": 1, "outbuf_cnt": 0}
    for _ in range(30):
        clock.now += 1
        watch.on_stats(_stats(clock, 10, 0, GroupCoordinator=coordinator))
    assert not caplog.records
    assert watch.outages == 0


def test_snapshots_served_late_in_a_burst_are_not_silence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The caller was busy for 20 s: the snapshots queued meanwhile are served at once."""
    clock = Clock()
    watch = BrokerWatch("consumer", "k:9092", stall_s=5, clock=clock)
    watch.on_stats(_stats(clock, 1, 1))
    made = clock.now
    clock.now += 20
    for rx in [1, 1, *range(2, 20)]:  # two seconds without an answer, then answers
        watch.on_stats(json.dumps(json.loads(_stats(clock, rx, 1)) | {"ts": int(made * 1e6)}))
        made += 1
    assert not caplog.records


def test_client_errors_after_a_first_answer_open_an_outage_that_an_answer_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    watch = BrokerWatch("consumer", "k:9092", clock=clock)
    caplog.set_level(logging.DEBUG, logger="backbeat.transport.kafka.health")
    watch.on_error(KafkaError(KafkaError._TRANSPORT, "Connection refused"))  # never reached
    assert caplog.records[-1].levelno == logging.DEBUG
    caplog.clear()
    _feed(watch, clock, 1, rx=5, waiting=1)
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    watch.on_error(KafkaError(KafkaError._TRANSPORT, "Connection refused"))  # same outage
    clock.now += 3
    _feed(watch, clock, 1, rx=6, waiting=0)
    levels = [level for level, _ in _records(caplog)]
    assert levels == [logging.WARNING, logging.DEBUG, logging.INFO]
    assert "1/1 brokers are down" in caplog.records[0].getMessage()
    assert watch.outages == 1
    watch.on_error(KafkaError(KafkaError._FATAL, "fenced", fatal=True))
    assert caplog.records[-1].levelno == logging.ERROR
