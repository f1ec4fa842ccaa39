"""``backbeat replay`` of every format, into a store and into JSONL files, against an
independent SQL over the original file: plays and minutes listened per artist and per day.

The real samples (``../shared/data/spotify/``, ``../shared/data/eventsim/``) are replayed as
they are; the formats no sample covers (the Kaggle CSV, ``endsong_*.json``, the whole
``my_spotify_data.zip``) are built here, in their documented shape, from the extended sample.
The oracle reads each original file with DuckDB's own readers (never backbeat's). A second
import of the same file, and a larger export that contains it, add only what is new.

Next: ``backbeat.replay`` (the readers), ``docs/replay.md`` (the mappings).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from backbeat.sinks.queries import ListeningTime
from tests.cli.test_cli import _run
from tests.support.stores import ask, duck_sql

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
EXTENDED = DATA / "spotify" / "Streaming_History_Audio_sample.json"
ACCOUNT = DATA / "spotify" / "StreamingHistory0_sample.json"
EVENTSIM = DATA / "eventsim" / "sparkify-log-2018-11-01-events.json"
pytestmark = pytest.mark.skipif(
    not EXTENDED.exists(), reason=f"the shared test data is not at {DATA}"
)
Rows = set[tuple[str, str, int, float]]


def _oracle(sql: str) -> Rows:
    """(day, artist, plays, minutes) rows of ``sql`` (columns start_ms, artist, ms)."""
    rows = duckdb.sql(
        f"SELECT strftime(make_timestamp(start_ms * 1000), '%Y-%m-%d') AS day, artist, "
        f"count(*) AS plays, round(sum(ms) / 60000.0, 3) AS minutes FROM ({sql}) "
        "GROUP BY ALL"
    ).fetchall()
    return {(d, a, int(p), float(m)) for d, a, p, m in rows}


def _extended_sql(path: Path) -> str:
    return (
        "SELECT epoch_ms(strptime(ts, '%Y-%m-%dT%H:%M:%SZ')) - ms_played AS start_ms, "
        "master_metadata_album_artist_name AS artist, ms_played AS ms "
        f"FROM read_json('{path}', format='array', columns={{'ts': 'VARCHAR', "
        "'ms_played': 'BIGINT', 'master_metadata_album_artist_name': 'VARCHAR', "
        "'spotify_track_uri': 'VARCHAR'}) WHERE spotify_track_uri IS NOT NULL"
    )


def _account_sql(path: Path) -> str:
    return (
        "SELECT epoch_ms(strptime(endTime, '%Y-%m-%d %H:%M')) - msPlayed AS start_ms, "
        f"artistName AS artist, msPlayed AS ms FROM read_json('{path}', format='array', "
        "columns={'endTime': 'VARCHAR', 'artistName': 'VARCHAR', 'msPlayed': 'BIGINT'})"
    )


def _kaggle_sql(path: Path) -> str:
    return (
        "SELECT epoch_ms(coalesce(try_strptime(ts, '%Y-%m-%d %H:%M:%S'), "
        "try_strptime(ts, '%m/%d/%Y %H:%M'))) - ms_played AS start_ms, "
        "artist_name AS artist, ms_played AS ms "
        f"FROM read_csv('{path}', header=true, all_varchar=false, types={{'ts': 'VARCHAR'}})"
    )


def _eventsim_sql(path: Path) -> str:
    return (
        "SELECT ts AS start_ms, artist, round(length * 1000)::BIGINT AS ms "
        f"FROM read_json_auto('{path}', format='newline_delimited') WHERE page = 'NextSong'"
    )


def _stored(store: Path) -> Rows:
    return {
        (str(r["day"]), r["artist"], r["plays"], r["minutes"])
        for r in ask(store, ListeningTime(limit=100_000))
    }


def _written(folder: Path) -> Rows:
    return _oracle(
        f"SELECT ts AS start_ms, artist, msPlayed AS ms "
        f"FROM read_json_auto('{folder}/listen_events.jsonl', format='newline_delimited')"
    )


def _extended_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(EXTENDED.read_bytes())
    return rows


def _kaggle(path: Path) -> Path:
    """``spotify_history.csv`` from the extended sample; some rows re-saved by a spreadsheet
    (``M/D/YYYY H:MM``, no seconds), booleans as ``TRUE``/``FALSE``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["spotify_track_uri", "ts", "platform", "ms_played", "track_name",
                     "artist_name", "album_name", "reason_start", "reason_end", "shuffle",
                     "skipped"])  # fmt: skip
    for i, r in enumerate(_extended_rows()):
        if not r["spotify_track_uri"]:
            continue
        stop = datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        ts = (
            f"{stop.month}/{stop.day}/{stop.year} {stop.hour}:{stop.minute:02d}"
            if i % 7 == 0
            else stop.strftime("%Y-%m-%d %H:%M:%S")
        )
        writer.writerow([
            r["spotify_track_uri"].removeprefix("spotify:track:"), ts, r["platform"],
            r["ms_played"], r["master_metadata_track_name"],
            r["master_metadata_album_artist_name"], r["master_metadata_album_album_name"],
            r["reason_start"], r["reason_end"], str(r["shuffle"]).upper(),
            "" if r["skipped"] is None else str(r["skipped"]).upper(),
        ])  # fmt: skip
    path.write_text(out.getvalue())
    return path


def _endsong(path: Path) -> Path:
    """An older ``endsong_0.json``: ``username`` and the decrypted address fields."""
    rows = [
        {**r, "username": "listener1", "ip_addr_decrypted": "10.0.0.1",
         "user_agent_decrypted": "unknown"}
        for r in _extended_rows()
    ]  # fmt: skip
    path.write_text(json.dumps(rows))
    return path


def _zip(path: Path) -> Path:
    """``my_spotify_data.zip`` as Spotify sends it: both histories and other files."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(
            EXTENDED, "Spotify Extended Streaming History/Streaming_History_Audio_2023_0.json"
        )
        archive.write(ACCOUNT, "Spotify Account Data/StreamingHistory_music_0.json")
        archive.writestr("Spotify Account Data/Userdata.json", '{"username": "x"}')
        archive.writestr("Spotify Account Data/StreamingHistory_podcast_0.json", "[]")
        archive.writestr("Spotify Extended Streaming History/ReadMeFirst.pdf", b"%PDF-1.4")
    return path


FORMATS = {
    "extended": (lambda tmp: EXTENDED, lambda p: _oracle(_extended_sql(p))),
    "account": (lambda tmp: ACCOUNT, lambda p: _oracle(_account_sql(p))),
    "kaggle": (lambda tmp: _kaggle(tmp / "spotify_history.csv"), lambda p: _oracle(_kaggle_sql(p))),
    "endsong": (lambda tmp: _endsong(tmp / "endsong_0.json"), lambda p: _oracle(_extended_sql(p))),
    "eventsim": (lambda tmp: EVENTSIM, lambda p: _oracle(_eventsim_sql(p))),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_replays_into_a_store_and_files_like_an_independent_sql(
    name: str, tmp_path: Path
) -> None:
    make, oracle = FORMATS[name]
    path = make(tmp_path)
    want = oracle(path)
    assert want, "the oracle found no plays"
    code, text = _run("--json", "replay", str(path), "--store", str(tmp_path / "store"))
    assert code == 0, text
    report = json.loads(text)
    assert report["dead"] == 0
    assert _stored(tmp_path / "store") == want
    code, text = _run("--json", "replay", str(path), "--out", str(tmp_path / "files"))
    assert code == 0, text
    assert _written(tmp_path / "files") == want


def test_the_whole_zip_replays_both_histories_and_counts_what_it_passes_over(
    tmp_path: Path,
) -> None:
    archive = _zip(tmp_path / "my_spotify_data.zip")
    code, text = _run("--json", "replay", str(archive), "--store", str(tmp_path / "store"))
    assert code == 0, text
    report = json.loads(text)
    assert report["files"] == 2
    assert report["left_out"] == {"podcast episode": 7}
    assert report["passed_over"] == {"not a listening history": 2, "podcast history file": 1}
    want = _oracle(f"{_extended_sql(EXTENDED)} UNION ALL {_account_sql(ACCOUNT)}")
    assert _stored(tmp_path / "store") == want


def test_a_second_import_and_a_larger_export_add_only_what_is_new(tmp_path: Path) -> None:
    rows = _extended_rows()
    cut = sorted(r["ts"] for r in rows)[len(rows) // 2]
    older = tmp_path / "older" / "Streaming_History_Audio_2023_0.json"
    older.parent.mkdir()
    older.write_text(json.dumps([r for r in rows if r["ts"] < cut]))  # the order kept
    store, files = tmp_path / "store", tmp_path / "files"
    for path in (older, older, EXTENDED):
        assert _run("replay", str(path), "--store", str(store))[0] == 0
        assert _run("replay", str(path), "--out", str(files))[0] == 0
    want = _oracle(_extended_sql(EXTENDED))
    assert _stored(store) == want
    assert _written(files) == want
    totals = duck_sql(store, "SELECT count(*) AS n FROM dead_letters")
    assert totals == [{"n": 0}]
    lines = (files / "listen_events.jsonl").read_bytes().splitlines()
    assert len(lines) == len(set(lines)) == sum(1 for r in rows if r["spotify_track_uri"])


def test_a_file_that_is_no_history_is_one_line(tmp_path: Path) -> None:
    other = tmp_path / "notes.json"
    other.write_text('{"hello": "world"}')
    code, text = _run("replay", str(other), "--out", str(tmp_path / "o"))
    assert code == 1
    assert "is not a listening history backbeat reads; give --format" in " ".join(text.split())
    assert "Traceback" not in text


def test_the_catalog_gives_tracks_their_genre_and_the_share_listened(tmp_path: Path) -> None:
    from tests.support.catalogs import write_kaggle_csv

    rows = [r for r in _extended_rows() if r["spotify_track_uri"]]
    ids = sorted({r["spotify_track_uri"].removeprefix("spotify:track:") for r in rows})[:20]
    tracks = write_kaggle_csv(tmp_path / "synthetic.csv", n_tracks=40)
    known = tracks.slice(0, len(ids)).set_column(
        tracks.schema.get_field_index("track_id"), "track_id", pa.array(ids)
    )
    catalog = tmp_path / "tracks.csv"
    pacsv.write_csv(known.add_column(0, "", pa.array(range(known.num_rows))), catalog)
    store = tmp_path / "store"
    code, text = _run("--json", "replay", str(EXTENDED), "--catalog", str(catalog),
                      "--store", str(store))  # fmt: skip
    assert code == 0, text
    genres = {r["track_id"]: r["track_genre"] for r in known.to_pylist()}
    duration = {r["track_id"]: r["duration_ms"] for r in known.to_pylist()}
    want: dict[str, int] = {}
    for r in rows:
        tid = r["spotify_track_uri"].removeprefix("spotify:track:")
        want[genres.get(tid, "unknown")] = want.get(genres.get(tid, "unknown"), 0) + 1
    got = duck_sql(store, "SELECT genre, sum(plays)::BIGINT AS n FROM m_genre_minute GROUP BY 1")
    assert {r["genre"]: r["n"] for r in got} == want
    listens = duck_sql(store, "SELECT track_id, listen_pct, completed, ms_played FROM listens")
    for r in listens:
        if r["track_id"] in duration:
            pct = min(r["ms_played"] / duration[r["track_id"]], 1.0)
            assert r["listen_pct"] == pytest.approx(pct)
            assert r["completed"] == (pct >= 0.99)
        else:
            assert r["listen_pct"] is None


@pytest.mark.integration
@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_replays_into_kafka_once(name: str, tmp_path: Path, kafka: Any) -> None:
    from tests.support.kafka_log import read_topics

    make, oracle = FORMATS[name]
    path = make(tmp_path)
    args = ("--json", "replay", str(path), "--bootstrap-servers", kafka.bootstrap_servers,
            "--topic-prefix", kafka.topic_prefix)  # fmt: skip
    code, text = _run(*args)
    assert code == 0, text
    code, text = _run(*args)  # a second import sends nothing
    assert code == 0, text
    assert json.loads(text)["sent"] == {}
    records = read_topics(kafka.bootstrap_servers, [kafka.topic("listen_events")])
    plays = [json.loads(r.value) for r in records]
    folder = tmp_path / "read"
    folder.mkdir()
    (folder / "listen_events.jsonl").write_text("\n".join(json.dumps(p) for p in plays) + "\n")
    assert _written(folder) == oracle(path)
    assert len({p["eventId"] for p in plays}) == len(plays)
