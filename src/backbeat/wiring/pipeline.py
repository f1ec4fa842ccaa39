"""Assembling a run: a source, the primary store, result sinks and an engine, chosen by name.

``stream`` and ``demo`` describe what they want as a :class:`RunPlan` (store location, sink
choices, engine name and settings); :func:`assemble` builds every part through the
registries (``backbeat.transport.registry``, ``backbeat.sinks.registry``,
``backbeat.engine.registry``) and returns an :class:`Assembly` that closes them in the right
order. This is the one place where concrete backends are chosen; the engine, the API and the
terminal view only see their contracts.

Next: ``backbeat.commands.stream`` and ``backbeat.commands.demo`` (the callers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from backbeat.engine.base import Engine, EngineSettings, OnBatch, OnError
from backbeat.engine.registry import ENGINES
from backbeat.errors import ConfigError
from backbeat.sinks.base import ResultSink, SinkSpec, Store
from backbeat.sinks.queries import Reader
from backbeat.sinks.registry import SINKS, open_sinks, open_store
from backbeat.transport.base import Source
from backbeat.transport.registry import SOURCES

if TYPE_CHECKING:
    from backbeat.serve.auth import AuthConfig
    from backbeat.serve.hub import CommitHub
    from backbeat.serve.web_process import WebProcess
    from backbeat.transport.kafka.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a run is made of, as the user chose it.

    Attributes:
        store: the ``--store`` location (a folder, or a URL).
        sinks: secondary result sinks, in order.
        engine: the ``--engine`` name.
        settings: the engine's knobs.
        shared: several processes write the store (members of one consumer group).
    """

    store: str
    sinks: tuple[SinkSpec, ...] = ()
    engine: str = "embedded"
    settings: EngineSettings = field(default_factory=EngineSettings)
    shared: bool = False


def sink_specs(
    names: Sequence[str],
    targets: dict[str, str | None],
    options: Sequence[str],
    kafka: KafkaSettings | None = None,
) -> tuple[SinkSpec, ...]:
    """Sink choices from flags: ``--sink A,B`` (repeatable), each sink's target flag
    (``--csv FILE``: giving it alone implies ``--sink csv``), and ``--sink-option
    NAME.KEY=VALUE`` for the rest.

    Raises:
        ConfigError: an unknown sink, an option of a sink not chosen, a malformed option.
    """
    chosen: list[str] = []
    for name in (n.strip() for entry in names for n in entry.split(",")):
        if name:
            SINKS.choose(name)  # one line naming the choices
            chosen.append(name)
    for name, target in targets.items():
        if target is not None and name not in chosen:
            chosen.append(name)
    per_sink: dict[str, dict[str, str]] = {}
    for option in options:
        target, value = key_value(option, "--sink-option", "NAME.KEY=VALUE")
        name, dot, key = target.partition(".")
        if not (dot and key):
            raise ConfigError(f"--sink-option {option!r}: write it as NAME.KEY=VALUE")
        if name not in chosen:
            raise ConfigError(f"--sink-option {option!r}: the {name!r} sink was not chosen")
        per_sink.setdefault(name, {})[key] = value
    return tuple(
        SinkSpec(name, targets.get(name), per_sink.get(name, {}), kafka) for name in chosen
    )


def key_value(option: str, flag: str, form: str = "KEY=VALUE") -> tuple[str, str]:
    """``KEY=VALUE`` (a flag's value) as ``(KEY, VALUE)``.

    Raises:
        ConfigError: no ``=``, or nothing before it.
    """
    key, equals, value = option.partition("=")
    if not (equals and key):
        raise ConfigError(f"{flag} {option!r}: write it as {form}")
    return key, value


def jsonl_source(inputs: Sequence[Path], follow: bool) -> Source:
    """JSONL files (or folders of them), each named after its topic, as a source.

    Raises:
        SourceError: an input is missing, not a regular file, or not named after a topic.
    """
    from backbeat.transport.jsonl import discover, named_after_topics

    files = named_after_topics(discover(inputs))
    source: Source = SOURCES.load("jsonl")(files, follow=follow)
    return source


def kafka_source(
    kafka: KafkaSettings,
    topics: Sequence[str],
    *,
    group: str | None,
    start: Literal["earliest", "latest"] | datetime,
    stop_at_end: bool,
) -> Source:
    """Kafka topics (cluster names) as a source, in a consumer group with ``group``."""
    source: Source = SOURCES.load("kafka")(
        kafka, topics, group=group, start=start, stop_at_end=stop_at_end
    )
    return source


class Assembly:
    """A run's parts: the primary store, the result sinks and the engine."""

    def __init__(self, store: Store, sinks: list[ResultSink], engine: Engine) -> None:
        self.store = store
        self.sinks = sinks
        self.engine = engine

    def reader(self) -> Reader:
        """Named queries over the run's store."""
        return self.store.reader()


@contextlib.contextmanager
def assemble(
    source: Source,
    plan: RunPlan,
    on_batch: OnBatch | None = None,
    prepare: Callable[[Store], None] | None = None,
    on_error: OnError | None = None,
) -> Iterator[Assembly]:
    """The run of ``source`` that ``plan`` describes; every part (the source included) is
    closed on the way out. ``prepare`` sees the store before the engine reads it (the demo
    empties it); ``on_batch`` and ``on_error`` are the engine's callbacks.

    Raises:
        ConfigError: an unknown store scheme, sink or engine (one line naming the choices);
        MissingExtraError: a chosen part's extra is not installed;
        StoreError, StoreLockedError: the store cannot be opened.
    """
    with contextlib.ExitStack() as parts:
        parts.callback(source.close)
        engine_class = ENGINES.load(plan.engine)
        sinks = open_sinks(plan.sinks)
        for sink in sinks:
            parts.callback(sink.close)
        store = open_store(plan.store, shared=plan.shared)
        parts.callback(store.close)
        if prepare is not None:
            prepare(store)
        engine: Engine = engine_class(source, store, sinks, plan.settings, on_batch, on_error)
        parts.callback(engine.close)  # first out: it saves the sinks' last marks
        yield Assembly(store, sinks, engine)


def web_server(
    reader: Reader, host: str, port: int, token: AuthConfig
) -> tuple[WebProcess, CommitHub]:
    """The API and dashboard over the store this process writes, in a child process (its own
    GIL); the caller publishes each committed batch id to the hub."""
    from backbeat.serve.web_process import process_server

    return process_server(reader, host, port, token)
