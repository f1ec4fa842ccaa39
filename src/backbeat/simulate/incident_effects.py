"""How incidents change a run's events: a crowd joins for a spike, events are lost in a drop.

A spike (``factor > 1``) is a crowd of extra listeners who are there for the window only: a
population of its own, drawn like the run's and ``factor - 1`` times the size of the part of
the run's population in scope (weighted by the share of each user's listens in scope: a
user's listens come from two devices and, when travelling, from other countries), made of
users entirely in scope (their devices are the platform, their home the country). Its engine
starts in steady state at the window's start (``steady.py``: sessions under way, at the usual
level for that time of day), so the scope's listens per minute are ``factor`` times the usual
from the first minute; its events stop at the window's end. A crowd's listens outside the
scope (a trip abroad) are dropped with their page view. Crowd users have ids from
``CROWD_FIRST_ID`` and sessions in a range of the run's session ids far from the run's own
(and from other crowds'), under the run's event-id tag.

A drop (``factor < 1``) is a service losing requests: each event in the window and the scope
is kept with probability ``factor``, decided by a hash of (sessionId, itemInSession, the
incident), so a listen and its NextSong page view are lost together; a scoped drop loses
listens in scope and their page views (other events carry no platform or country).

The run's own users are never changed: outside its window and scope an incident changes no
event, and the run's scope (its ids) ignores incidents. Crowds' events do not depend on how
time is cut into steps (their engines are the simulator's), and a resumed run catches a crowd
up from its window's start.

Next: ``simulator.py`` calls :meth:`IncidentEffects.apply` on each chunk's tables.
"""

from __future__ import annotations

import dataclasses
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.events.schema import PLATFORMS, Topic
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.config import EventsimConfig
from backbeat.simulate.engine import Engine
from backbeat.simulate.incidents import Incident
from backbeat.simulate.listen import TRAVEL_SHARE
from backbeat.simulate.machine import Machine
from backbeat.simulate.rng import mix
from backbeat.simulate.scope import SESSION_SPACE, RunScope
from backbeat.simulate.tables import TableBuilder
from backbeat.simulate.users import COUNTRIES, Users, make_users

F64 = npt.NDArray[np.float64]
Tables = dict[Topic, pa.Table]

CROWD_FIRST_ID: Final = 10**12
"""The first crowd's first user id; crowd ``k`` starts at ``(k + 1) * CROWD_FIRST_ID``."""
CROWD_SESSIONS: Final = 2**26
"""Session ids each crowd has to itself, from half the id space away from the run's."""
_SORT: Final = [("ts", "ascending"), ("sessionId", "ascending"), ("itemInSession", "ascending")]
_DROP_SALT: Final = np.uint64(0xD40F)
_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_TO_UNIT: Final = 1.0 / float(1 << 53)


@dataclasses.dataclass(frozen=True, eq=False)
class RunParts:
    """What a crowd shares with the run it joins; ``crowds`` keeps each crowd's engine at its
    window's start (by incident index) for the run's next passes."""

    users: Users
    machine: Machine
    catalog: Catalog
    config: EventsimConfig
    seed: int
    scope: RunScope
    builder: TableBuilder
    crowds: dict[int, Engine] = dataclasses.field(default_factory=dict)


def in_scope_share(users: Users, incident: Incident) -> F64:
    """The expected share of each user's listens in the incident's scope (1 unscoped)."""
    share = np.ones(len(users))
    if incident.platform is not None:
        p = PLATFORMS.index(incident.platform)
        main = users.platform_share * (users.platform_main == p)
        share *= main + (1.0 - users.platform_share) * (users.platform_alt == p)
    if incident.country is not None:
        c = COUNTRIES.index(incident.country)
        share *= (1.0 - TRAVEL_SHARE) * (users.country == c) + TRAVEL_SHARE / len(COUNTRIES)
    return share


class Crowd:
    """A spike's extra listeners; :meth:`tables` gives their events in a span of time."""

    def __init__(self, incident: Incident, index: int, run: RunParts) -> None:
        self.incident, self.index, self.run = incident, index, run
        usual = in_scope_share(run.users, incident).sum()
        each = 1.0 if incident.country is None else 1.0 - TRAVEL_SHARE * (1 - 1 / len(COUNTRIES))
        self.size = round((incident.factor - 1.0) * usual / each)
        self._engine: Engine | None = None
        self._t = incident.start_ms

    def _build(self) -> Engine:
        built = self.run.crowds.get(self.index)
        if built is None:
            built = self.run.crowds[self.index] = self._at_start()
        return built.copy()

    def _at_start(self) -> Engine:
        run, incident = self.run, self.incident
        users = make_users(
            run.seed, (self.index + 1) * CROWD_FIRST_ID, self.size, machine=run.machine,
            alpha_s=run.config.alpha, beta_s=run.config.beta, n_genres=len(run.catalog.genres),
            registered_before_ms=incident.start_ms,
        )  # fmt: skip
        offset = run.scope.session_offset + SESSION_SPACE // 2 + self.index * CROWD_SESSIONS
        return Engine(
            users=_in_scope(users, incident), machine=run.machine, catalog=run.catalog,
            config=dataclasses.replace(run.config, growth_rate=0.0), seed=run.seed,
            start_ms=incident.start_ms,
            scope=RunScope(tag=run.scope.tag, session_offset=offset % SESSION_SPACE),
        )  # fmt: skip

    def tables(self, t0: int, t1: int) -> Tables | None:
        """The crowd's events in scope with ``t0 <= ts < t1`` (None: none, out of the window).
        Calls must come in time order."""
        lo, hi = max(t0, self.incident.start_ms), min(t1, self.incident.end_ms)
        if lo >= hi or self.size < 1:
            return None
        if self._engine is None:
            self._engine = self._build()
        if self._t < lo:  # resumed past the window's start: catch up, dropping the events
            self._engine.step(self._t, lo)
        cols = self._engine.step(lo, hi)
        self._t = hi
        tables = self.run.builder.build(cols, self._engine.users, lo)
        return _keep_in_scope(tables, self.incident)


class IncidentEffects:
    """The incidents of one pass over a run (crowds hold state: one instance per pass)."""

    def __init__(self, incidents: tuple[Incident, ...], run: RunParts) -> None:
        self.incidents = incidents
        self.crowds = [
            Crowd(incident, k, run) for k, incident in enumerate(incidents) if incident.factor > 1
        ]

    def apply(self, chunk: Tables, t0: int, t1: int) -> Tables:
        """The chunk ``[t0, t1)`` with the crowds' events added and the drops' lost, sorted by
        (ts, sessionId, itemInSession) like the simulator's tables."""
        extra = [c for c in (crowd.tables(t0, t1) for crowd in self.crowds) if c is not None]
        if extra:
            chunk = {
                topic: pa.concat_tables([chunk[topic], *(e[topic] for e in extra)]).sort_by(_SORT)
                for topic in chunk
            }
        for k, incident in enumerate(self.incidents):
            if incident.factor < 1 and incident.start_ms < t1 and t0 < incident.end_ms:
                chunk = _drop(chunk, incident, k)
        return chunk


def _in_scope(users: Users, incident: Incident) -> Users:
    """``users`` moved into the scope: their devices are its platform, their home its
    country."""
    n = len(users)
    platform = None if incident.platform is None else PLATFORMS.index(incident.platform)
    country = None if incident.country is None else COUNTRIES.index(incident.country)
    return dataclasses.replace(
        users,
        platform_main=users.platform_main if platform is None else np.full(n, platform, np.int32),
        platform_alt=users.platform_alt if platform is None else np.full(n, platform, np.int32),
        country=users.country if country is None else np.full(n, country, np.int32),
    )


def _listen_in_scope(listen: pa.Table, incident: Incident) -> npt.NDArray[np.bool_]:
    keep = np.ones(listen.num_rows, bool)
    for column, value in (("platform", incident.platform), ("country", incident.country)):
        if value is not None:
            keep &= pc.fill_null(pc.equal(listen[column], value), False).to_numpy()
    return keep


def _keys(table: pa.Table) -> npt.NDArray[np.int64]:
    """(sessionId, itemInSession) packed into one int64 per row."""
    sid = np.asarray(table["sessionId"].to_numpy(), np.int64)
    item = np.asarray(table["itemInSession"].to_numpy(), np.int64)
    out: npt.NDArray[np.int64] = (sid << 31) | item
    return out


def _without(tables: Tables, listen_lost: npt.NDArray[np.bool_]) -> Tables:
    """``tables`` without the lost listens and their NextSong page views."""
    if not listen_lost.any():
        return tables
    listen = tables[Topic.LISTEN]
    lost = _keys(listen)[listen_lost]
    page = tables[Topic.PAGE_VIEW]
    song = pc.equal(page["page"], "NextSong").to_numpy(zero_copy_only=False)
    page_lost = np.isin(_keys(page), lost) & song
    return tables | {
        Topic.LISTEN: listen.filter(pa.array(~listen_lost)),
        Topic.PAGE_VIEW: page.filter(pa.array(~page_lost)),
    }


def _keep_in_scope(tables: Tables, incident: Incident) -> Tables:
    if not incident.scoped:
        return tables
    return _without(tables, ~_listen_in_scope(tables[Topic.LISTEN], incident))


def _lost(table: pa.Table, incident: Incident, index: int) -> npt.NDArray[np.bool_]:
    """Rows in the window whose draw says lost (probability ``1 - factor``)."""
    ts = table["ts"].to_numpy()
    key = _keys(table).astype(np.uint64) * _GOLDEN + _DROP_SALT + np.uint64(index)
    u = (mix(key) >> np.uint64(11)).astype(np.float64) * _TO_UNIT
    in_window = (ts >= incident.start_ms) & (ts < incident.end_ms)
    out: npt.NDArray[np.bool_] = in_window & (u >= incident.factor)
    return out


def _drop(tables: Tables, incident: Incident, index: int) -> Tables:
    if incident.scoped:
        listen = tables[Topic.LISTEN]
        lost = _lost(listen, incident, index) & _listen_in_scope(listen, incident)
        return _without(tables, lost)
    return {
        topic: table.filter(pa.array(~_lost(table, incident, index)))
        for topic, table in tables.items()
    }
