"""Turn one step's event columns (NumPy) into Arrow tables with the contract's exact schema.

Rows are sorted by (ts, sessionId, itemInSession) with one packed-integer sort; strings are
gathered with ``take`` from small dictionaries (pools, catalog, state table) and identity fields
become null where the config hides them for the event's auth. Page views are built first and a
listen's common columns are its NextSong page view's, filtered. ``eventId`` is
``"<l|p|a|s>-<run tag>-<sessionId, 10 digits>-<item>"`` (the tag: ``scope.py``), assembled
in NumPy by ``event_ids.py``.

Next: ``simulator.py`` wraps the tables in a ``SimBatch``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from backbeat.events.schema import (
    AUTHS,
    GENDERS,
    LEVELS,
    MOODS,
    PLATFORMS,
    SCHEMA_VERSION,
    Topic,
    arrow_schema,
)
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.event_ids import event_ids
from backbeat.simulate.identity import IdentityPool
from backbeat.simulate.machine import Machine
from backbeat.simulate.scope import RunScope
from backbeat.simulate.users import COUNTRIES, Users

Cols = dict[str, npt.NDArray[Any]]

_LETTER: Final = {
    Topic.LISTEN: "l",
    Topic.PAGE_VIEW: "p",
    Topic.AUTH: "a",
    Topic.STATUS_CHANGE: "s",
}
_LEVELS: Final = pa.array(LEVELS, pa.string())
_AUTHS: Final = pa.array(AUTHS, pa.string())
_GENDERS: Final = pa.array(GENDERS, pa.string())
_MOODS: Final = pa.array(MOODS, pa.string())
_PLATFORMS: Final = pa.array(PLATFORMS, pa.string())
_COUNTRIES: Final = pa.array(COUNTRIES, pa.string())


class TableBuilder:
    """Builds the four topic tables from a step's columns; holds the lookup dictionaries."""

    def __init__(
        self, pool: IdentityPool, machine: Machine, catalog: Catalog, scope: RunScope
    ) -> None:
        self.pool, self.machine, self.catalog = pool, machine, catalog
        self.prefix = {topic: scope.event_id_prefix(letter) for topic, letter in _LETTER.items()}
        self.first_names = pa.concat_arrays([pool.first_male, pool.first_female])
        self.n_male = len(pool.first_male)

    def build(self, cols: dict[str, Cols], users: Users, t0: int) -> dict[Topic, pa.Table]:
        """All four tables (empty ones included) for one step starting at ``t0``.

        Page views are sorted once; listens are their NextSong rows, so a listen's common
        columns are the page view's, filtered (one ``filter`` over Arrow columns).
        """
        out = {topic: arrow_schema(topic).empty_table() for topic in Topic}
        page = cols.get("page", {})
        if not page or not len(page["ts"]):
            return out
        m = self.machine
        order = _order(page["ts"], page["sid"], page["item"], t0)
        is_song = m.is_song[page["state"]]
        listen_pos = np.cumsum(is_song) - 1  # listen row of each (unsorted) page row
        p = {k: v[order] for k, v in page.items()}
        song = is_song[order]
        state = p["state"]
        common = self._common(p, m.level[state], m.auth[state], users)
        out[Topic.PAGE_VIEW] = self._table(
            Topic.PAGE_VIEW, p, common, self._pages(state, song, cols["listen"], listen_pos[order])
        )
        if song.any():
            lorder = listen_pos[order][song]
            listen = {k: v[lorder] for k, v in cols["listen"].items()}
            mask = pa.array(song)
            shared = {name: arr.filter(mask) for name, arr in common.items()}
            keys = {"sid": p["sid"][song], "item": p["item"][song]}
            out[Topic.LISTEN] = self._table(Topic.LISTEN, keys, shared, self._listens(listen))
        for topic, key in ((Topic.AUTH, "auth"), (Topic.STATUS_CHANGE, "status")):
            c = cols.get(key, {})
            if c and len(c["ts"]):
                o = _order(c["ts"], c["sid"], c["item"], t0)
                c = {k: v[o] for k, v in c.items()}
                specific = (
                    {"success": pa.array(c["success"])}
                    if topic is Topic.AUTH
                    else {"prevLevel": _LEVELS.take(c["prev"])}
                )
                common = self._common(c, c["level"], c["auth"], users)
                out[topic] = self._table(topic, c, common, specific)
        return out

    def _table(
        self, topic: Topic, keys: Cols, common: dict[str, pa.Array], specific: dict[str, pa.Array]
    ) -> pa.Table:
        """A topic's table in contract order; ``keys`` holds its ``sid`` and ``item``."""
        ids = event_ids(self.prefix[topic], keys["sid"], keys["item"])
        arrays = {**common, **specific, "eventId": ids}
        schema = arrow_schema(topic)
        return pa.Table.from_arrays([arrays[n] for n in schema.names], schema=schema)

    def _common(
        self, c: Cols, level: npt.NDArray[np.int32], auth: npt.NDArray[np.int32], users: Users
    ) -> dict[str, pa.Array]:
        """The common columns except ``eventId`` (which names the topic)."""
        n, row = len(c["ts"]), c["user"]
        hidden = ~self.machine.show_details[auth]
        male = users.male[row]
        first = users.first_name[row] + np.where(male, 0, self.n_male).astype(np.int32)
        place = users.place[row]
        return {
            "ts": pa.array(c["ts"]),
            "schemaVersion": pa.array(np.full(n, SCHEMA_VERSION, np.int32)),
            "sessionId": pa.array(c["sid"]),
            "itemInSession": pa.array(c["item"].astype(np.int32)),
            "level": _LEVELS.take(level),
            "auth": _AUTHS.take(auth),
            "city": self.pool.city.take(place),
            "zip": self.pool.zip.take(users.zip[row]),
            "state": self.pool.state.take(place),
            "lat": pa.array(self.pool.lat[place]),
            "lon": pa.array(self.pool.lon[place]),
            "userAgent": self.pool.user_agent.take(users.user_agent[row]),
            "userId": pa.array(users.user_id[row], mask=hidden),
            "firstName": self.first_names.take(pa.array(first, mask=hidden)),
            "lastName": self.pool.last.take(pa.array(users.last_name[row], mask=hidden)),
            "gender": _GENDERS.take(pa.array(np.where(male, 0, 1), mask=hidden)),
            "registration": pa.array(c["reg"], mask=hidden),
        }

    def _pages(
        self, state: npt.NDArray[np.int32], song: npt.NDArray[np.bool_], listen: Cols,
        listen_pos: npt.NDArray[np.int64],
    ) -> dict[str, pa.Array]:  # fmt: skip
        cat = self.catalog
        track = np.zeros(len(state), np.int64)
        if song.any():
            track[song] = listen["track"][listen_pos[song]]
        no_song = ~song
        idx = pa.array(track, mask=no_song)
        return {
            "page": self.machine.page.take(state),
            "method": self.machine.method.take(state),
            "status": pa.array(self.machine.status[state]),
            "artist": cat.artist.take(idx),
            "song": cat.song.take(idx),
            "duration": pa.array(cat.duration_s[track], mask=no_song),
        }

    def _listens(self, c: Cols) -> dict[str, pa.Array]:
        cat = self.catalog
        track = c["track"]
        pct = c["pct"]
        return {
            "artist": cat.artist.take(track),
            "song": cat.song.take(track),
            "duration": pa.array(cat.duration_s[track]),
            "trackId": cat.track_id.take(track),
            "album": cat.album.take(track),
            "genre": cat.genre_names.take(cat.track_genre[track]),
            "platform": _PLATFORMS.take(c["platform"]),
            "country": _COUNTRIES.take(c["country"]),
            "mood": _MOODS.take(cat.mood[track]),
            "msPlayed": pa.array(c["ms_played"]),
            "listenPct": pa.array(pct),
            "completed": pa.array(pct >= 0.99),
            "skipped": pa.array(c["skipped"]),
            "rating": pa.array(c["rating"], mask=np.isnan(c["rating"])),
        }


def _order(
    ts: npt.NDArray[np.int64], sid: npt.NDArray[np.int64], item: npt.NDArray[np.int32], t0: int
) -> npt.NDArray[np.int64]:
    """Row order by (ts, sessionId, itemInSession); (ts, sessionId) is unique per topic.

    Packs (ts - t0, sid - min sid, row) into one int64 and sorts the values (SIMD sort, ~6x
    faster than ``argsort``); falls back to ``lexsort`` when the three do not fit in 63 bits.
    """
    n, t_lo, s_lo = len(ts), int(ts.min()), int(sid.min())
    row_bits = max(n - 1, 1).bit_length()
    sid_bits = (int(sid.max()) - s_lo).bit_length()
    ts_bits = (int(ts.max()) - t0).bit_length()
    if t_lo < t0 or ts_bits + sid_bits + row_bits > 63:
        return np.lexsort((item, sid, ts)).astype(np.int64)
    key = ((ts - t0) << (sid_bits + row_bits)) | ((sid - s_lo) << row_bits)
    key |= np.arange(n, dtype=np.int64)
    key.sort()
    key &= (1 << row_bits) - 1
    return key
