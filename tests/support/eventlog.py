"""A deterministic, realistic event log over the four topics, plus an injector of trouble.

:func:`generate` builds users, sessions and items with NumPy (fast enough for millions of
events) and returns one Arrow table per topic in *arrival* order (event time plus up to 20 s
of delivery jitter, never late). Every NextSong page view has its listen event (same session,
item, time, artist, song, duration); a Login page has its auth event; a Submit Upgrade /
Downgrade page has its status change.

:func:`write_log` encodes the tables as ``<topic>.jsonl`` files and, with a seed, mixes in
exact duplicates, same-(sessionId, itemInSession) duplicates with a new eventId, late events
(moved minutes later in the file), late-but-allowed events, exact duplicates arriving too late,
malformed records (``malformed.py``) and, when asked, a ``bogus_events.jsonl`` file (for
sources used as a library: ``backbeat stream`` refuses a file not named after a topic). The
returned
:class:`EventLog` (also saved as ``manifest.json`` next to the files) lists every injected
line with its byte offset and category.

Next: ``malformed.py`` (the bad records), ``oracle.py`` (the expected results).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.events import Topic, arrow_schema, encode_table
from tests.support.malformed import CATEGORIES, STANDARD, UNKNOWN_TOPIC, dumps

START_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
LATENESS_MS = 120_000

GENRES = (
    "Rock",
    "Pop",
    "Hip-Hop/Rap",
    "Jazz",
    "Electronic",
    "Classical",
    "R&B",
    "Folk, World & Country",
    'The "Blues"',
    "Música Mexicana",
    "Metal",
    "Reggae",
)
FIRST = ("Ada", "Grace", "Linus", "Zoë", "Émile", "Sven", "Aiko", "Noor", "Kofi", "Maria")
LAST = ("Lovelace", "Hopper", "Torvalds", "Müller", "O'Brien", "Nakamura", "Okafor")
PLACES = (
    ("Tampa", "33602", "FL", 27.95, -82.46),
    ("New York", "10001", "NY", 40.75, -73.99),
    ("San José", "95112", "CA", 37.34, -121.89),
    ("Austin", "73301", "TX", 30.27, -97.74),
    ("Anchorage", "99501", "AK", 61.22, -149.9),
    ("Coeur d'Alene", "83814", "ID", 47.68, -116.78),
)
AGENTS = (
    "Mozilla/5.0 (Macintosh)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)",
    "Spotify/8.8 Android",
)
PLATFORMS = ("ios", "android", "web", "desktop", "tv", "car", "speaker")
COUNTRIES = ("US", "CA", "MX", "GB", "DE", "BR", "JP")
MOODS = ("happy", "sad", "energetic", "chill", "romantic", "angry", "focus", "party")
USER_PAGES = (
    "NextSong",
    "Home",
    "Thumbs Up",
    "Thumbs Down",
    "Add to Playlist",
    "Settings",
    "Help",
    "About",
    "Logout",
    "Submit Upgrade",
    "Submit Downgrade",
)
USER_PAGE_P = (0.62, 0.1, 0.06, 0.02, 0.04, 0.03, 0.03, 0.03, 0.03, 0.02, 0.02)
GUEST_PAGES = ("Home", "About", "Help", "Register", "Login", "Error")
LETTER = {Topic.LISTEN: "l", Topic.PAGE_VIEW: "p", Topic.AUTH: "a", Topic.STATUS_CHANGE: "s"}


def _take(values: tuple[object, ...] | list[object], idx: np.ndarray) -> pa.Array:
    return pa.array(list(values)).take(pa.array(idx))


def generate(sessions: int, minutes: int, seed: int) -> dict[Topic, pa.Table]:
    """A valid log: ``sessions`` sessions starting over ``minutes`` minutes, by topic.

    About 20 page views per session, 60% of them NextSong. Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    n_users = max(8, sessions // 3)
    n_tracks = 400
    tr_genre = rng.integers(len(GENRES), size=n_tracks)
    tr_artist = rng.integers(60, size=n_tracks)
    tr_dur = np.round(rng.uniform(90, 420, n_tracks), 3)
    u_level = rng.integers(2, size=n_users)
    u_place = rng.integers(len(PLACES), size=n_users)

    s_user = rng.integers(n_users, size=sessions)
    s_guest = rng.random(sessions) < 0.1
    s_start = START_MS + rng.integers(0, minutes * 60_000, size=sessions)
    s_items = rng.integers(4, 36, size=sessions)
    sid = 10_000 + np.arange(sessions, dtype=np.int64) * 7
    n = int(s_items.sum())
    s = np.repeat(np.arange(sessions), s_items)
    first = np.r_[0, np.cumsum(s_items)[:-1]]
    item = np.arange(n) - np.repeat(first, s_items)
    gaps = np.where(item == 0, 0, rng.integers(2_000, 50_000, size=n))
    csum = np.cumsum(gaps)
    ts = s_start[s] + csum - np.repeat(csum[first], s_items)
    guest = s_guest[s]
    page_idx = rng.choice(len(USER_PAGES), size=n, p=USER_PAGE_P)
    page = np.where(item == 0, "Login", np.asarray(USER_PAGES)[page_idx])
    page = np.where(guest, np.asarray(GUEST_PAGES)[rng.integers(len(GUEST_PAGES), size=n)], page)
    user = s_user[s]
    level = u_level[user]
    place = u_place[user]
    cols: dict[str, pa.Array] = {
        "ts": pa.array(ts, pa.int64()),
        "schemaVersion": pa.array(np.ones(n, np.int32)),
        "sessionId": pa.array(sid[s]),
        "itemInSession": pa.array(item.astype(np.int32)),
        "level": _take(("free", "paid"), level),
        "auth": pa.array(np.where(guest, "Guest", "Logged In")),
        "city": _take([p[0] for p in PLACES], place),
        "zip": _take([p[1] for p in PLACES], place),
        "state": _take([p[2] for p in PLACES], place),
        "lat": _take([p[3] for p in PLACES], place),
        "lon": _take([p[4] for p in PLACES], place),
        "userAgent": _take(AGENTS, user % len(AGENTS)),
        "userId": pa.array(np.where(guest, 0, 1000 + user), mask=guest),
        "firstName": pa.array(np.asarray(FIRST)[user % len(FIRST)], mask=guest),
        "lastName": pa.array(np.asarray(LAST)[user % len(LAST)], mask=guest),
        "gender": pa.array(np.where(user % 2 == 0, "F", "M"), mask=guest),
        "registration": pa.array(START_MS - 86_400_000 * (1 + user % 2000), mask=guest),
    }
    track = (n_tracks * rng.random(n) ** 2.5).astype(np.int64)
    pct = rng.random(n)
    # 45 % played whole, 15 % nearly, the rest anywhere (a listen under 30 % is a skip)
    pct = np.where(pct < 0.45, 1.0, np.where(pct < 0.6, 0.99 + pct / 100, (pct - 0.6) / 0.4))
    pct = np.round(pct, 4)
    completed = pct >= 0.99
    dur = tr_dur[track]
    rated = rng.random(n) < 0.2
    listen = {
        "artist": pa.array([f"Artist {a:02d}" for a in range(60)]).take(pa.array(tr_artist[track])),
        "song": pa.array([f"Song №{t}" for t in range(n_tracks)]).take(pa.array(track)),
        "duration": pa.array(dur),
        "trackId": pa.array([f"TR{t:05d}" for t in range(n_tracks)]).take(pa.array(track)),
        "album": pa.array([f"Album {t // 8}" for t in range(n_tracks)]).take(pa.array(track)),
        "genre": _take(GENRES, tr_genre[track]),
        "platform": _take(PLATFORMS, rng.integers(len(PLATFORMS), size=n)),
        "country": _take(COUNTRIES, rng.integers(len(COUNTRIES), size=n)),
        "mood": _take(MOODS, rng.integers(len(MOODS), size=n)),
        "msPlayed": pa.array((pct * dur * 1000).astype(np.int64)),
        "listenPct": pa.array(pct),
        "completed": pa.array(completed),
        "skipped": pa.array((pct < 0.3) & ~completed),
        "rating": pa.array(rng.integers(2, 11, size=n) / 2, mask=~rated),
    }
    is_song = page == "NextSong"
    is_put = np.isin(page, ["Login", "Submit Upgrade", "Submit Downgrade", "Register"])
    song_mask = ~is_song
    pages = {
        "page": pa.array(page),
        "method": pa.array(np.where(is_put, "PUT", "GET")),
        "status": pa.array(
            np.where(page == "Error", 404, np.where(is_put, 307, 200)).astype(np.int32)
        ),
        "artist": pa.array(listen["artist"].to_pylist(), mask=song_mask),
        "song": pa.array(listen["song"].to_pylist(), mask=song_mask),
        "duration": pa.array(dur, mask=song_mask),
    }
    success = rng.random(n) < 0.9
    login_ok = (page == "Login") & ~guest & success
    auth_cols = dict(cols)
    auth_cols["auth"] = pa.array(
        np.where(guest, "Guest", np.where(login_ok, "Logged In", "Logged Out"))
    )
    auth_cols["userId"] = pa.array(np.where(login_ok, 1000 + user, 0), mask=~login_ok)
    upgrade = page == "Submit Upgrade"
    change_cols = dict(cols)
    change_cols["level"] = pa.array(np.where(upgrade, "paid", "free"))
    arrival = ts + rng.integers(0, 20_000, size=n)
    out = {
        Topic.PAGE_VIEW: (cols | pages, np.ones(n, bool)),
        Topic.LISTEN: (cols | listen, is_song),
        Topic.AUTH: (auth_cols | {"success": pa.array(success)}, page == "Login"),
        Topic.STATUS_CHANGE: (
            change_cols | {"prevLevel": pa.array(np.where(upgrade, "free", "paid"))},
            np.isin(page, ["Submit Upgrade", "Submit Downgrade"]),
        ),
    }
    tables = {}
    for topic, (data, keep) in out.items():
        data = dict(data)
        data["eventId"] = pc.binary_join_element_wise(
            LETTER[topic],
            pc.cast(data["sessionId"], pa.string()),
            pc.cast(data["itemInSession"], pa.string()),
            "-",
        )
        schema = arrow_schema(topic)
        table = pa.table({f.name: data[f.name] for f in schema}).cast(schema)
        idx = np.flatnonzero(keep)
        order = idx[np.argsort(arrival[idx], kind="stable")]
        tables[topic] = table.take(pa.array(order))
    return tables


@dataclass(frozen=True, slots=True)
class Injected:
    """One line the injector put in a file."""

    file: str
    offset: int
    category: str
    kind: str  # "malformed", "late", "late_allowed", "duplicate"


@dataclass(slots=True)
class EventLog:
    """The files of a log and what was injected into them."""

    directory: Path
    injected: list[Injected] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> EventLog:
        """The log written in ``directory`` (its files and ``manifest.json``)."""
        entries = json.loads((directory / "manifest.json").read_text())
        lines = {p.name: len(p.read_bytes().split(b"\n")) - 1 for p in directory.glob("*.jsonl")}
        return cls(directory, [Injected(**e) for e in entries], lines)

    def save(self) -> None:
        """Write the manifest next to the files."""
        (self.directory / "manifest.json").write_text(
            json.dumps([asdict(e) for e in self.injected])
        )

    def prepend(self, name: str, bad: list[tuple[bytes, str]], keep_rest: bool = True) -> None:
        """Put malformed ``(line, category)`` pairs at the start of file ``name``."""
        path = self.directory / name
        rest = path.read_bytes() if keep_rest and path.exists() else b""
        head = b"".join(line + b"\n" for line, _ in bad)
        shift = len(head)
        self.injected = [
            Injected(e.file, e.offset + shift, e.category, e.kind) if e.file == name else e
            for e in self.injected
        ]
        if not keep_rest:
            self.injected = [e for e in self.injected if e.file != name]
        offset = 0
        for line, category in bad:
            self.injected.append(Injected(name, offset, category, "malformed"))
            offset += len(line) + 1
        path.write_bytes(head + rest)
        self.lines[name] = len(bad) + (self.lines.get(name, 0) if keep_rest else 0)
        self.save()

    def of_kind(self, *kinds: str) -> list[Injected]:
        return [e for e in self.injected if e.kind in kinds]

    def counts(self, *kinds: str) -> Counter[str]:
        return Counter(e.category for e in self.of_kind(*kinds))

    def malformed_offsets(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for e in self.of_kind("malformed"):
            out.setdefault(e.file, set()).add(e.offset)
        return out


@dataclass(frozen=True, slots=True)
class Trouble:
    """How many of each injection to make (per topic file, malformed spread over topics)."""

    exact_dups: int = 20
    key_dups: int = 20
    late: int = 10
    late_allowed: int = 20
    late_dups: int = 5
    malformed: int = 60
    categories: tuple[str, ...] = STANDARD
    bogus_lines: int = 0  # lines of bogus_events.jsonl (an unknown topic: not for the CLI)


def write_log(
    directory: Path, tables: dict[Topic, pa.Table], seed: int, trouble: Trouble | None = Trouble()
) -> EventLog:
    """Encode ``tables`` as JSONL files in ``directory``, injecting ``trouble`` (None: none)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    log = EventLog(directory)
    per_topic_bad = _spread(rng, trouble, list(tables)) if trouble else {}
    for topic, table in tables.items():
        lines = encode_table(topic, table).split(b"\n")[:-1]
        inserts: list[tuple[int, bytes, str, str]] = []  # (before original index, line, cat, kind)
        if trouble is not None:
            inserts = _troubles(rng, topic, table, lines, trouble, per_topic_bad.get(topic, []))
        _write(log, f"{topic.value}.jsonl", lines, inserts)
    if trouble is not None and trouble.bogus_lines:
        rec = json.loads(encode_table(Topic.LISTEN, tables[Topic.LISTEN].slice(0, 1)))
        lines = [dumps(rec | {"eventId": f"bogus-{i}"}) for i in range(trouble.bogus_lines)]
        _write(log, "bogus_events.jsonl", [], [(0, ln, UNKNOWN_TOPIC, "malformed") for ln in lines])
    log.save()
    return log


def _spread(
    rng: np.random.Generator, trouble: Trouble, topics: list[Topic]
) -> dict[Topic, list[str]]:
    """Assign ``trouble.malformed`` categories round-robin to topics they apply to."""
    out: dict[Topic, list[str]] = {t: [] for t in topics}
    for i in range(trouble.malformed):
        cat = trouble.categories[i % len(trouble.categories)]
        allowed = [t for t in CATEGORIES[cat].topics if t in out]
        out[allowed[int(rng.integers(len(allowed)))]].append(cat)
    return out


def _troubles(
    rng: np.random.Generator,
    topic: Topic,
    table: pa.Table,
    lines: list[bytes],
    trouble: Trouble,
    bad: list[str],
) -> list[tuple[int, bytes, str, str]]:
    n = len(lines)
    ts = table.column("ts").to_numpy()
    prefix_max = np.maximum.accumulate(ts)
    # Sources must not set a new maximum (so moving them changes nobody's lateness).
    movable = np.flatnonzero(np.r_[False, ts[1:] <= prefix_max[:-1]])
    rng.shuffle(movable)
    pool = iter(movable.tolist())
    used: set[int] = set()
    inserts: list[tuple[int, bytes, str, str]] = []
    removed: set[int] = set()

    def place(i: int, lo: int, hi: int) -> int | None:
        """An insertion point j > i with prefix_max[j-1] - ts[i] in [lo, hi] ms."""
        a = int(np.searchsorted(prefix_max, ts[i] + lo, side="left")) + 1
        b = int(np.searchsorted(prefix_max, ts[i] + hi, side="right"))
        a = max(a, i + 1)
        return int(rng.integers(a, b + 1)) if a <= b and a <= n else None

    def make(
        count: int, lo: int, hi: int, category: str, kind: str, move: bool, new_id: bool
    ) -> None:
        made = 0
        for i in pool:
            if made == count:
                return
            j = place(i, lo, hi)
            if j is None or j in used or i in used:
                continue
            used.update((i, j))
            line = lines[i]
            if new_id:
                rec = json.loads(line)
                rec["eventId"] = f"{rec['eventId']}-retry"
                rec["ts"] -= int(rng.integers(0, 5_000))
                line = dumps(rec)
            if move:
                removed.add(i)
            inserts.append((j, line, category, kind))
            made += 1

    make(trouble.exact_dups, 0, 90_000, "exact_dup", "duplicate", move=False, new_id=False)
    make(trouble.key_dups, 0, 80_000, "key_dup", "duplicate", move=False, new_id=True)
    make(trouble.late, 180_000, 600_000, "late", "late", move=True, new_id=False)
    make(
        trouble.late_allowed,
        5_000,
        110_000,
        "late_allowed",
        "late_allowed",
        move=True,
        new_id=False,
    )
    make(trouble.late_dups, 200_000, 900_000, "late_dup", "late", move=False, new_id=False)
    for cat in bad:
        rec = json.loads(lines[int(rng.integers(n))])
        raw = CATEGORIES[cat].build(rng, topic, rec)
        inserts.append((int(rng.integers(0, n + 1)), raw, cat, "malformed"))
    for i in sorted(removed, reverse=True):
        lines[i] = b""  # placeholder, skipped by _write
    return [(j, ln, c, k) for j, ln, c, k in inserts] + [(i, b"", "", "removed") for i in removed]


def _write(
    log: EventLog, name: str, lines: list[bytes], inserts: list[tuple[int, bytes, str, str]]
) -> None:
    """Write ``lines`` with ``inserts`` placed before original indexes; record offsets."""
    removed = {j for j, _, _, k in inserts if k == "removed"}
    by_pos: dict[int, list[tuple[bytes, str, str]]] = {}
    for j, ln, cat, kind in inserts:
        if kind != "removed":
            by_pos.setdefault(j, []).append((ln, cat, kind))
    chunks: list[bytes] = []
    offset = 0
    count = 0
    for pos in range(len(lines) + 1):
        for ln, cat, kind in by_pos.get(pos, []):
            log.injected.append(Injected(name, offset, cat, kind))
            chunks.append(ln)
            offset += len(ln) + 1
            count += 1
        if pos < len(lines) and pos not in removed:
            chunks.append(lines[pos])
            offset += len(lines[pos]) + 1
            count += 1
    (log.directory / name).write_bytes(b"\n".join(chunks) + b"\n" if chunks else b"")
    log.lines[name] = count
