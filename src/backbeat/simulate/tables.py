"""Turn one step's event columns (NumPy) into Arrow tables with the contract's exact schema.

Rows are sorted by (ts, sessionId, itemInSession); strings are gathered with ``take`` from
small dictionaries (pools, catalog, state table) and identity fields become null where the
config hides them for the event's auth. ``eventId`` is ``"<l|p|a|s>-<sessionId>-<item>"``,
joined with ``pyarrow.compute``.

Next: ``simulator.py`` wraps the tables in a ``SimBatch``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

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
from backbeat.simulate.identity import IdentityPool
from backbeat.simulate.machine import Machine
from backbeat.simulate.users import COUNTRIES, Users

Cols = dict[str, npt.NDArray[Any]]

_LETTER: Final = {
    Topic.LISTEN: "l",
    Topic.PAGE_VIEW: "p",
    Topic.AUTH: "a",
    Topic.STATUS_CHANGE: "s",
}
_KEY: Final = {Topic.LISTEN: "listen", Topic.PAGE_VIEW: "page", Topic.AUTH: "auth",
               Topic.STATUS_CHANGE: "status"}  # fmt: skip
_LEVELS: Final = pa.array(LEVELS, pa.string())
_AUTHS: Final = pa.array(AUTHS, pa.string())
_GENDERS: Final = pa.array(GENDERS, pa.string())
_MOODS: Final = pa.array(MOODS, pa.string())
_PLATFORMS: Final = pa.array(PLATFORMS, pa.string())
_COUNTRIES: Final = pa.array(COUNTRIES, pa.string())


class TableBuilder:
    """Builds the four topic tables from a step's columns; holds the lookup dictionaries."""

    def __init__(self, pool: IdentityPool, machine: Machine, catalog: Catalog) -> None:
        self.pool, self.machine, self.catalog = pool, machine, catalog
        self.first_names = pa.concat_arrays([pool.first_male, pool.first_female])
        self.n_male = len(pool.first_male)

    def build(
        self, cols: dict[str, Cols], users: Users, registration: npt.NDArray[np.int64], t0: int
    ) -> dict[Topic, pa.Table]:
        """All four tables (empty ones included) for one step starting at ``t0``."""
        out = {}
        for topic in Topic:
            c = cols.get(_KEY[topic], {})
            if not c or not len(c["ts"]):
                out[topic] = arrow_schema(topic).empty_table()
                continue
            order = _order(c["ts"], c["sid"], c["item"], t0)
            c = {k: v[order] for k, v in c.items()}
            if topic is Topic.PAGE_VIEW:
                c["level"], c["auth"] = (
                    self.machine.level[c["state"]],
                    self.machine.auth[c["state"]],
                )
            arrays = self._common(topic, c, users, registration)
            arrays.update(self._specific(topic, c))
            schema = arrow_schema(topic)
            out[topic] = pa.Table.from_arrays([arrays[n] for n in schema.names], schema=schema)
        return out

    def _common(
        self, topic: Topic, c: Cols, users: Users, registration: npt.NDArray[np.int64]
    ) -> dict[str, pa.Array]:
        n, row = len(c["ts"]), c["user"]
        hidden = ~self.machine.show_details[c["auth"]]
        male = users.male[row]
        first = users.first_name[row] + np.where(male, 0, self.n_male).astype(np.int32)
        place = users.place[row]
        sid, item = pa.array(c["sid"]), pa.array(c["item"].astype(np.int32))
        return {
            "ts": pa.array(c["ts"]),
            "eventId": pc.binary_join_element_wise(
                _LETTER[topic], pc.cast(sid, pa.string()), pc.cast(item, pa.string()), "-"
            ),
            "schemaVersion": pa.array(np.full(n, SCHEMA_VERSION, np.int32)),
            "sessionId": sid,
            "itemInSession": item,
            "level": _LEVELS.take(c["level"]),
            "auth": _AUTHS.take(c["auth"]),
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
            "registration": pa.array(registration[row], mask=hidden),
        }

    def _specific(self, topic: Topic, c: Cols) -> dict[str, pa.Array]:
        cat = self.catalog
        if topic is Topic.LISTEN:
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
        if topic is Topic.PAGE_VIEW:
            track = c["track"]
            no_song = track < 0
            idx = pa.array(np.maximum(track, 0), mask=no_song)
            return {
                "page": self.machine.page.take(c["state"]),
                "method": self.machine.method.take(c["state"]),
                "status": pa.array(self.machine.status[c["state"]]),
                "artist": cat.artist.take(idx),
                "song": cat.song.take(idx),
                "duration": pa.array(cat.duration_s[np.maximum(track, 0)], mask=no_song),
            }
        if topic is Topic.AUTH:
            return {"success": pa.array(c["success"])}
        return {"prevLevel": _LEVELS.take(c["prev"])}


def _order(
    ts: npt.NDArray[np.int64], sid: npt.NDArray[np.int64], item: npt.NDArray[np.int32], t0: int
) -> npt.NDArray[np.intp]:
    """Row order by (ts, sessionId, itemInSession); (ts, sessionId) is unique per topic."""
    span = int(ts.max()) - t0
    if 0 <= span < 2**32 and int(ts.min()) >= t0:
        return np.argsort(((ts - t0) << 31) | sid, kind="stable")
    return np.lexsort((item, sid, ts))
