"""Replaying real histories: files -> events per listener -> a store, or JSONL files.

:func:`load` finds the history files among the paths (``backbeat.replay.formats``), reads
them, groups Spotify plays by listener and turns each listener's plays into listen events
(``backbeat.replay.listens``), eventsim output into its four topics; every stream is sorted by
event time across all the files given (exports come as several yearly files, not in order).
:func:`to_jsonl` appends what a folder does not hold yet, :func:`to_kafka` produces what the
cluster does not have yet; into a store, the run is assembled
like ``stream``'s with a :class:`~backbeat.replay.source.ReplaySource`, whose positions are
event times, so a second import adds only what is new.

Next: ``backbeat.commands.replay`` (the command), ``docs/replay.md`` (the mappings).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc

from backbeat.errors import ConfigError
from backbeat.events.codec import encode_table
from backbeat.events.schema import Topic
from backbeat.replay.eventsim import read_eventsim
from backbeat.replay.formats import Format, find
from backbeat.replay.listens import SESSION_GAP_MS, listen_events, user_id_of
from backbeat.replay.source import PREFIX, Stream, resume_at
from backbeat.replay.spotify import Plays, read_account, read_extended, read_kaggle

if TYPE_CHECKING:
    from backbeat.transport.kafka.settings import KafkaSettings

STATE_FILE: Final = ".backbeat-replay.json"
_READERS: Final = {
    Format.EXTENDED: read_extended,
    Format.ACCOUNT: read_account,
    Format.KAGGLE: read_kaggle,
}


@dataclass(slots=True)
class Replay:
    """What a set of files replays: the streams, and what was left out or passed over."""

    streams: list[Stream] = field(default_factory=list)
    files: int = 0
    left_out: Counter[str] = field(default_factory=Counter)
    passed_over: Counter[str] = field(default_factory=Counter)

    @property
    def events(self) -> int:
        return sum(s.table.num_rows for s in self.streams)


def load(
    paths: Sequence[Path],
    *,
    forced: Format | None = None,
    user: str | None = None,
    catalog: pa.Table | None = None,
    gap_ms: int = SESSION_GAP_MS,
) -> Replay:
    """Every stream the files at ``paths`` hold, in event-time order.

    Args:
        paths: files, folders or zips.
        forced: read every file in this format (else each is recognised).
        user: the listener of the Spotify files (else each export's ``username``, else a
            stable hash of the export's first play).
        catalog: what is known of tracks (``backbeat.replay.catalog.lookup``).
        gap_ms: the inactivity that ends a session.

    Raises:
        SourceError: a path is missing or unreadable, or holds no history.
    """
    found = find(paths, forced)
    replay = Replay(files=len(found.inputs), passed_over=found.passed_over)
    plays: list[Plays] = []
    eventsim: dict[Topic, list[pa.Table]] = {}
    for item in found.inputs:
        if item.format is Format.EVENTSIM:
            for topic, table in read_eventsim(item.data, item.name).items():
                eventsim.setdefault(topic, []).append(table)
        else:
            plays.append(_READERS[item.format](item.data, item.name))
    if plays:
        joined = Plays.join(plays)
        replay.left_out.update(joined.left_out)
        for name, listener in _by_listener(joined.table, user):
            events = listen_events(listener, user_id_of(name), catalog, gap_ms)
            replay.streams.append(Stream(f"{PREFIX}{user_id_of(name)}", Topic.LISTEN, events))
    if eventsim:
        tables = {t: pa.concat_tables(v) for t, v in eventsim.items()}
        tag = _export_tag(tables[Topic.PAGE_VIEW])
        for topic, table in tables.items():
            ordered = table.sort_by([("ts", "ascending"), ("sessionId", "ascending"),
                                     ("itemInSession", "ascending")])  # fmt: skip
            replay.streams.append(Stream(f"{PREFIX}eventsim-{tag}:{topic.value}", topic, ordered))
    return replay


def _by_listener(plays: pa.Table, user: str | None) -> list[tuple[str, pa.Table]]:
    """Plays per listener: all of them for ``user``, else per ``username`` (plays without
    one belong to the export, named by a hash of its first play)."""
    if user is not None:
        return [(user, plays)]
    names = plays.column("username")
    if names.null_count == len(names):
        return [(_export_name(plays), plays)]
    groups = []
    for name in pc.unique(names).to_pylist():
        mine = plays.filter(pc.is_null(names) if name is None else pc.equal(names, name))
        groups.append((name if name is not None else _export_name(mine), mine))
    return groups


def _export_name(plays: pa.Table) -> str:
    """A stable name for an export without a username: a hash of its earliest play, which a
    newer export of the same account also starts with."""
    earliest = plays.filter(pc.equal(plays.column("end_ms"), pc.min(plays.column("end_ms"))))
    first = earliest.sort_by([("artist", "ascending"), ("track", "ascending"),
                              ("ms_played", "ascending")]).slice(0, 1).to_pylist()[0]  # fmt: skip
    key = f"{first['end_ms']}|{first['ms_played']}|{first['artist']}|{first['track']}"
    return "export-" + hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def _export_tag(page_views: pa.Table) -> str:
    first = page_views.sort_by([("ts", "ascending")]).slice(0, 1).to_pylist()
    key = "" if not first else f"{first[0]['ts']}|{first[0]['sessionId']}|{first[0]['userId']}"
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def to_jsonl(replay: Replay, out: Path) -> dict[str, int]:
    """Append to ``<topic>.jsonl`` files in ``out`` the events they do not hold yet, in event
    time order; returns the events written per topic.

    Exactly once: a folder holds one replay, and its state (``.backbeat-replay.json``) names
    the streams, where each stands and the size of every file; an append the state does not
    know of (a crash before the state was saved) is cut off before appending again.

    Raises:
        ConfigError: ``out`` holds another replay.
    """
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    positions: dict[str, int] = state.get("positions", {})
    sizes: dict[str, int] = state.get("sizes", {})
    ours = {s.name for s in replay.streams}
    if not state and any((out / f"{t.value}.jsonl").exists() for t in Topic):
        raise ConfigError(
            f"{str(out)!r} holds event files that backbeat replay did not write: give --out "
            "an empty folder"
        )
    if positions and not set(positions) <= ours:
        others = ", ".join(sorted(set(positions) - ours))
        raise ConfigError(
            f"{str(out)!r} holds the replay of {others}: give --out another folder for this one"
        )
    written: dict[str, int] = {}
    for topic in Topic:
        mine = [s for s in replay.streams if s.topic is topic]
        rows = _fresh(mine, positions)
        if rows is None:
            continue
        path = out / f"{topic.value}.jsonl"
        _cut_to(path, sizes.get(topic.value, 0))
        with path.open("ab") as fh:
            for i in range(0, rows.num_rows, _CHUNK):  # a bounded buffer, however long
                fh.write(encode_table(topic, rows.slice(i, _CHUNK)))
            fh.flush()
            os.fsync(fh.fileno())
            sizes[topic.value] = fh.tell()
        for stream in mine:
            positions[stream.name] = int(stream.times[-1]) + 1
        written[topic.value] = rows.num_rows
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"positions": positions, "sizes": sizes}, indent=1, sort_keys=True))
    tmp.replace(state_path)
    return written


def _cut_to(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (what the state says it holds)."""
    if path.exists() and path.stat().st_size != size:
        with path.open("r+b") as fh:
            fh.truncate(size)


def to_kafka(replay: Replay, kafka: KafkaSettings, progress: bool = True) -> dict[str, int]:
    """Produce to the cluster's topics the events it does not have yet, in event-time order;
    returns the events sent per topic.

    At least once: each stream's position is recorded (``transport/kafka/positions.py``)
    after its events are acknowledged; a crash in between sends those events again, and the
    engine then drops them as duplicates within its horizon, or dead-letters them as late.

    Raises:
        SourceError: the cluster cannot be reached; TransientError: events or positions
        were not acknowledged.
    """
    from backbeat.simulate.simulator import SimBatch
    from backbeat.transport.kafka.admin import backbeat_topics, create_topics
    from backbeat.transport.kafka.positions import read_positions, write_positions
    from backbeat.wiring.produce import produce_batches

    create_topics(kafka, backbeat_topics(kafka))
    positions = read_positions(kafka)
    chunks: list[SimBatch] = []
    sent: dict[str, int] = {}
    for topic in Topic:
        mine = [s for s in replay.streams if s.topic is topic]
        rows = _fresh(mine, positions)
        if rows is None:
            continue
        for i in range(0, rows.num_rows, _CHUNK):
            part = rows.slice(i, _CHUNK)
            times = part.column("ts")
            chunks.append(
                SimBatch(len(chunks), pc.min(times).as_py(), pc.max(times).as_py() + 1,
                         {topic: part})
            )  # fmt: skip
        sent[topic.value] = rows.num_rows
    if chunks:
        produce_batches(chunks, kafka, total=sum(sent.values()), progress=progress)
    write_positions(kafka, {s.name: int(s.times[-1]) + 1 for s in replay.streams if len(s.times)})
    return sent


_CHUNK: Final = 50_000


def _fresh(streams: list[Stream], positions: dict[str, int]) -> pa.Table | None:
    """The events of ``streams`` after their positions, in event-time order (None: none)."""
    fresh = [
        part
        for s in streams
        if (part := s.table.slice(resume_at(s.times, positions.get(s.name)))).num_rows
    ]
    if not fresh:
        return None
    rows = pa.concat_tables(fresh)
    return rows.sort_by([("ts", "ascending")]) if len(fresh) > 1 else rows
