"""The vectorized session state machine: every user's next event, in NumPy rounds.

Each user has a pending event time and state (``NO_STATE`` = the next thing is a new
session). ``step(t0, t1)`` repeats rounds: every user due before ``t1`` emits one event, draws
the next state and the wait, and moves on; a round is a handful of array operations over the
due users, never a Python loop per event. Randomness is counter-based per user (``rng.py``),
and session ids are assigned at the end of a step by ranking new sessions by (start, user), so
the output does not depend on how time is cut into steps; the run's scope (``scope.py``) maps
that rank into the run's own range of ids. The engine starts in steady state: its constructor
draws each user's last session start before the run's start (``steady.py``) and simulates from
there up to the start, dropping those events, so sessions are under way at the start (and
none starts before it afterwards). ``listen.py`` draws what a NextSong plays; ``tables.py``
turns the collected columns into Arrow.

Next: ``simulator.py`` drives steps and builds batches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from backbeat.errors import ConfigError
from backbeat.simulate.calendar import ActivityTable
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.config import EventsimConfig
from backbeat.simulate.listen import draw_plays, finish_listens
from backbeat.simulate.machine import LEVEL_CHANGES, LOGGED_IN, NO_STATE, REGISTERS, Machine
from backbeat.simulate.rng import uniform_rows
from backbeat.simulate.scope import SESSION_SPACE, RunScope
from backbeat.simulate.steady import NO_START, last_starts
from backbeat.simulate.users import Users, make_users

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
Cols = dict[str, npt.NDArray[Any]]

NEVER: Final = np.iinfo(np.int64).max
GROWTH_BLOCK: Final = 256
_YEAR_MS: Final = 365.25 * 86_400_000
_SESSION_SALT: Final = np.uint64(0x5E55)
_MAX_THINNING: Final = 64
_CANDIDATES: Final = 4  # session-start candidates drawn per user at once while thinning
_ONE: Final = np.uint64(1)
_PER_USER: Final = ("state", "session", "item", "level", "auth", "registration", "ctr", "next_ts")
"""The per-user arrays ``step`` changes in place (``copy`` copies them)."""


@dataclass
class _Collector:
    """Per-topic lists of column chunks, concatenated once per step."""

    chunks: dict[str, dict[str, list[npt.NDArray[np.generic]]]] = field(default_factory=dict)

    def add(self, topic: str, **cols: npt.NDArray[np.generic]) -> None:
        bucket = self.chunks.setdefault(topic, {})
        for name, arr in cols.items():
            bucket.setdefault(name, []).append(arr)

    def finish(self, topic: str) -> Cols:
        return {k: np.concatenate(v) for k, v in self.chunks.get(topic, {}).items()}


class Engine:
    """Mutable simulation state over a growing population (see the module docstring)."""

    def __init__(
        self,
        *,
        users: Users,
        machine: Machine,
        catalog: Catalog,
        config: EventsimConfig,
        seed: int,
        start_ms: int,
        scope: RunScope,
    ) -> None:
        self.users, self.machine, self.catalog, self.config = users, machine, catalog, config
        self.seed, self.scope = seed, scope
        self.gap_ms = int(config.session_gap * 1000)
        self.activity = ActivityTable(config)
        n = len(users)
        self.n_initial = n
        self.state = np.full(n, NO_STATE, np.int32)
        self.session = np.zeros(n, np.int64)
        self.item = np.zeros(n, np.int32)
        self.level = users.level.copy()
        self.auth = users.auth.copy()
        self.registration = users.registration.copy()
        self.ctr = np.zeros(n, np.uint64)
        self.start_ms = start_ms
        self.n_sessions = 0  # sessions of this run so far (numbered 0, 1, ...)
        self.growth_blocks = 0
        self.last_arrival = float(start_ms)
        self._new_sessions: list[tuple[I64, I64]] = []
        self._n_new = 0
        song_ms = float(catalog.duration_s.mean()) * 1000
        self.next_ts = last_starts(
            users, machine, self.activity, song_ms=song_ms, gap_ms=self.gap_ms, start_ms=start_ms
        )
        idle = np.flatnonzero(self.next_ts == NO_START)
        self.next_ts[idle] = self._session_starts(idle, np.full(len(idle), start_ms, np.int64))
        if len(idle) < n:  # sessions under way at the start: simulate them up to it
            self.step(int(self.next_ts.min()), start_ms)

    def copy(self) -> Engine:
        """An independent engine in the same state (what is shared is never changed)."""
        twin = copy.copy(self)
        for name in _PER_USER:
            setattr(twin, name, getattr(self, name).copy())
        twin._new_sessions = list(self._new_sessions)
        return twin

    # ------------------------------------------------------------------ stepping

    def step(self, t0: int, t1: int) -> dict[str, Cols]:
        """Advance every user through ``[t0, t1)``; return the events as column dicts.

        ``page`` rows carry ``user, ts, sid, item, state, reg``; ``listen`` rows are the page
        rows whose state is a song, in the same order, with only the listen's own columns;
        ``auth`` and ``status`` rows carry their common columns in full.
        """
        self._grow(t1)
        out = _Collector()
        due = np.flatnonzero(self.next_ts < t1)
        while due.size:
            self._round(due, out)
            due = due[self.next_ts[due] < t1]
        cols = {topic: out.finish(topic) for topic in ("page", "listen", "auth", "status")}
        listen = cols["listen"]
        if listen:
            page = cols["page"]
            user = page["user"][self.machine.is_song[page["state"]]]
            rank, ctr = listen.pop("rank"), listen.pop("ctr")
            listen.update(finish_listens(self.users, user, ctr, rank, listen["skipped"]))
        self._assign_session_ids(cols)
        return cols

    def _round(self, u: I64, out: _Collector) -> None:
        m = self.machine
        st = self.state[u]
        starting = st == NO_STATE
        if starting.any():
            u = self._start_sessions(u, starting)
            if not u.size:
                return
            st = self.state[u]
        ts, sid, item, ctr = self.next_ts[u], self.session[u], self.item[u], self.ctr[u]
        r = uniform_rows(self.users.keys[u], ctr, 2)
        ctr += _ONE
        self.ctr[u] = ctr
        nxt, edge = m.next_edge(st, r[0])
        auth, level = m.auth[st], m.level[st]
        wait = np.where(m.is_redirect[st], 1000.0, -np.log1p(-r[1]) * self.users.alpha_ms[u])
        wait_ms = np.maximum(np.rint(wait).astype(np.int64), 1)

        song = np.flatnonzero(m.is_song[st])
        if song.size:
            lctr = ctr[song]
            play = draw_plays(self.users, self.catalog, u[song], lctr)
            wait_ms[song] = np.maximum(play["ms_played"], 1)
            out.add("listen", ctr=lctr, **play)
        flags = m.edge_flags[edge]
        if flags.any():
            registered = np.flatnonzero(flags & REGISTERS)
            self.registration[u[registered]] = ts[registered]
        reg = self.registration[u]
        out.add("page", user=u, ts=ts, sid=sid, item=item, state=st, reg=reg)

        login = np.flatnonzero(m.is_login[st])
        if login.size:
            after = np.where(nxt[login] >= 0, m.auth[nxt[login]], auth[login])
            out.add("auth", user=u[login], ts=ts[login], sid=sid[login], item=item[login],
                    level=level[login], auth=after, success=after == LOGGED_IN,
                    reg=reg[login])  # fmt: skip
        if flags.any():
            change = np.flatnonzero(flags & LEVEL_CHANGES)
            if change.size:
                new = nxt[change]
                out.add("status", user=u[change], ts=ts[change], sid=sid[change],
                        item=item[change], level=m.level[new], auth=m.auth[new],
                        prev=level[change], reg=reg[change])  # fmt: skip

        self.state[u] = nxt
        self.item[u] = item + 1
        next_ts = ts + wait_ms
        ended = np.flatnonzero(nxt < 0)
        if ended.size:  # remember how the session ended: the next one starts from there
            eu, ea = u[ended], auth[ended]
            self.auth[eu], self.level[eu] = ea, level[ended]
            churned = ea == m.churned_auth
            next_ts[ended[churned]] = NEVER
            back = ended[~churned]
            after = np.maximum(next_ts[back] + self.gap_ms, self.start_ms)
            next_ts[back] = self._session_starts(u[back], after)
        self.next_ts[u] = next_ts

    def _start_sessions(self, u: I64, starting: npt.NDArray[np.bool_]) -> I64:
        s = u[starting]
        r = uniform_rows(self.users.keys[s] ^ _SESSION_SALT, self.ctr[s], 1)
        first = self.machine.first_state(self.auth[s], self.level[s], r[0])
        stuck = s[first == NO_STATE]  # no way to start a session with this auth: gone for good
        self.next_ts[stuck] = NEVER
        ok = first != NO_STATE
        s, first = s[ok], first[ok]
        provisional = -(self._n_new + 1 + np.arange(len(s), dtype=np.int64))
        self._n_new += len(s)
        self._new_sessions.append((self.next_ts[s].copy(), self.users.user_id[s]))
        self.session[s], self.item[s], self.state[s] = provisional, 0, first
        return u[self.next_ts[u] != NEVER] if stuck.size else u

    def _session_starts(self, u: I64, t_from: I64) -> I64:
        """Next session start after ``t_from``: exponential(beta), thinned by activity.

        Draws ``_CANDIDATES`` successive candidates per user at once (counters ``c, c+1, ...``)
        and keeps the first accepted one, which gives exactly the numbers of drawing them one
        at a time: the cumulative sum runs in the same order.
        """
        users = self.users
        t = t_from.astype(np.float64)
        keys, ctr = users.keys[u] ^ _SESSION_SALT, self.ctr[u]
        beta, lon = users.beta_ms[u], users.lon[u]
        pending = np.arange(len(u))
        tried = 0
        while pending.size and tried < _MAX_THINNING:
            k = min(_CANDIDATES, _MAX_THINNING - tried)
            n = len(pending)
            p_ctr = ctr[pending]
            counters = (p_ctr[None, :] + np.arange(k, dtype=np.uint64)[:, None]).reshape(-1)
            r = uniform_rows(np.tile(keys[pending], k), counters, 2).reshape(2, k, n)
            steps = np.empty((k + 1, n))
            steps[0] = t[pending]
            steps[1:] = -np.log1p(-r[0]) * beta[pending]
            cand = np.cumsum(steps, axis=0)[1:]
            keep = r[1] < self.activity(cand.astype(np.int64), lon[pending])
            hit = keep.any(axis=0)
            first = np.where(hit, keep.argmax(axis=0), k - 1)
            t[pending] = cand[first, np.arange(n)]
            ctr[pending] = p_ctr + (first + 1).astype(np.uint64)
            pending = pending[~hit]
            tried += k
        self.ctr[u] = ctr
        return np.rint(t).astype(np.int64)

    # ------------------------------------------------------------------ bookkeeping

    def _assign_session_ids(self, cols: dict[str, Cols]) -> None:
        """Rank this step's new sessions by (start, user) and replace provisional ids with
        the run's session ids (the run's n-th session: ``scope.session_ids(n)``)."""
        if not self._n_new:
            return
        starts = np.concatenate([s for s, _ in self._new_sessions])
        owners = np.concatenate([o for _, o in self._new_sessions])
        rank = np.empty(self._n_new, np.int64)
        rank[np.lexsort((owners, starts))] = np.arange(self._n_new)
        if self.n_sessions + self._n_new > SESSION_SPACE:
            raise ConfigError("simulation ran out of 31-bit session ids; start a new run")
        final = self.scope.session_ids(self.n_sessions + rank)
        self.n_sessions += self._n_new
        for topic in cols.values():
            if "sid" in topic:
                sid = topic["sid"]
                neg = sid < 0
                sid[neg] = final[-sid[neg] - 1]
        neg = self.session < 0
        self.session[neg] = final[-self.session[neg] - 1]
        self._new_sessions, self._n_new = [], 0

    def _grow(self, t1: int) -> None:
        """Append blocks of newcomers (Guests) until arrivals reach past ``t1``."""
        rate = self.n_initial * self.config.growth_rate / _YEAR_MS  # users per ms
        while rate > 0 and self.last_arrival < t1:
            block = self.growth_blocks
            rng = np.random.default_rng([self.seed, 0x6C0, block])
            arrivals = self.last_arrival + np.cumsum(rng.exponential(1.0 / rate, GROWTH_BLOCK))
            first_id = self.n_initial + block * GROWTH_BLOCK + 1
            new = make_users(
                self.seed, first_id, GROWTH_BLOCK, machine=self.machine,
                alpha_s=self.config.alpha, beta_s=self.config.beta,
                n_genres=len(self.catalog.genres),
                registered_before_ms=int(arrivals[0]), newcomers=True,
            )  # fmt: skip
            self.users = self.users.concat(new)
            k = GROWTH_BLOCK
            self.state = np.concatenate([self.state, np.full(k, NO_STATE, np.int32)])
            self.session = np.concatenate([self.session, np.zeros(k, np.int64)])
            self.item = np.concatenate([self.item, np.zeros(k, np.int32)])
            self.level = np.concatenate([self.level, new.level])
            self.auth = np.concatenate([self.auth, new.auth])
            self.registration = np.concatenate([self.registration, arrivals.astype(np.int64)])
            self.ctr = np.concatenate([self.ctr, np.zeros(k, np.uint64)])
            self.next_ts = np.concatenate([self.next_ts, np.rint(arrivals).astype(np.int64)])
            self.last_arrival = float(arrivals[-1])
            self.growth_blocks += 1


def check_machine(machine: Machine) -> None:
    """Fail early if logged-in users can never play a song (a config that emits no listens)."""
    if not machine.is_song.any():
        raise ConfigError("config: no 'NextSong' page in the transitions: nothing to listen to")
