"""The site's Markov chain compiled into flat NumPy arrays for vectorized stepping.

States are numbered in order of first appearance in the config. Out-edges are stored CSR-style
with row ``r``'s cumulative probabilities shifted by ``r``, so one ``searchsorted`` over all
users draws every user's next state at once; a draw past the row's mass ends the session.
The same trick picks a session's first state per (auth, level) from ``new-session``.

Next: ``engine.py`` steps users through this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from backbeat.errors import ConfigError
from backbeat.events.schema import AUTHS, LEVELS
from backbeat.simulate.config import EventsimConfig, PageState

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]

NO_STATE: Final = -1
SONG_PAGE: Final = "NextSong"
LOGIN_PAGE: Final = "Login"
LOGGED_IN: Final = AUTHS.index("Logged In")
GUEST: Final = AUTHS.index("Guest")
LEVEL_CHANGES: Final = 1
"""Edge flag: the level changes (a status-change event)."""
REGISTERS: Final = 2
"""Edge flag: a guest becomes a registered user."""


@dataclass(frozen=True, eq=False)
class Machine:
    """Arrays describing the chain; index a state by its number."""

    states: tuple[PageState, ...]
    page: pa.Array  # string per state
    method: pa.Array  # string per state
    status: I32
    auth: I32  # index into schema.AUTHS
    level: I32  # index into schema.LEVELS
    is_song: BOOL
    is_redirect: BOOL
    is_login: BOOL
    edge_key: F64
    edge_dest: I32
    edge_next: I32  # edge_dest plus a last entry NO_STATE for "no edge taken"
    edge_flags: npt.NDArray[np.int8]  # LEVEL_CHANGES | REGISTERS per edge (0 for the last)
    row_end: I64
    start_key: F64
    start_dest: I32
    start_end: I64
    show_details: BOOL  # per auth
    churned_auth: int
    new_user_auth: int
    new_user_level: int
    level_weights: F64
    auth_weights: F64

    def next_edge(self, src: I32, u: F64) -> tuple[I32, I64]:
        """Draw each row's next state (``NO_STATE`` = the session ends) from uniforms ``u``.

        Also returns the edge taken, an index into ``edge_next``/``edge_flags`` (the last one
        when the session ends).
        """
        pos = np.searchsorted(self.edge_key, src + u, side="right")
        edge = np.where(pos < self.row_end[src], pos, len(self.edge_dest))
        return self.edge_next[edge], edge

    def first_state(self, auth: I32, level: I32, u: F64) -> I32:
        """Draw a new session's first state for users with this auth and level."""
        cat = auth * len(LEVELS) + level
        pos = np.searchsorted(self.start_key, cat + u, side="right")
        ok = pos < self.start_end[cat]
        return np.where(ok, self.start_dest[np.minimum(pos, len(self.start_dest) - 1)], NO_STATE)


def compile_machine(config: EventsimConfig) -> Machine:
    """Number the states of ``config`` and build the sampling arrays.

    Raises:
        ConfigError: the config has no way to start a session for logged-in users.
    """
    index: dict[PageState, int] = {}
    for t in config.transitions:
        index.setdefault(t.source, len(index))
        index.setdefault(t.dest, len(index))
    for state, _ in config.new_session:
        index.setdefault(state, len(index))
    states = tuple(index)
    n = len(states)

    rows: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for t in config.transitions:
        rows[index[t.source]].append((index[t.dest], t.p))
    edge_key, edge_dest, row_end = _csr(rows, normalize=False)

    n_cat = len(AUTHS) * len(LEVELS)
    cats: list[list[tuple[int, float]]] = [[] for _ in range(n_cat)]
    for state, w in config.new_session:
        if w > 0:
            cats[AUTHS.index(state.auth) * len(LEVELS) + LEVELS.index(state.level)].append(
                (index[state], w)
            )
    for a in range(len(AUTHS)):  # a level with no entry borrows the other level's entries
        for lv in range(len(LEVELS)):
            if not cats[a * len(LEVELS) + lv]:
                cats[a * len(LEVELS) + lv] = list(cats[a * len(LEVELS) + (1 - lv)])
    if not cats[LOGGED_IN * len(LEVELS)]:
        raise ConfigError("config: key 'new-session' has no entry for auth 'Logged In'")
    start_key, start_dest, start_end = _csr(cats, normalize=True)

    shown = dict(config.show_user_details)
    auth = np.array([AUTHS.index(s.auth) for s in states], np.int32)
    level = np.array([LEVELS.index(s.level) for s in states], np.int32)
    edge_src = np.repeat(np.arange(n), np.diff(row_end, prepend=0))
    edge_flags = np.where(level[edge_dest] != level[edge_src], LEVEL_CHANGES, 0) | np.where(
        (auth[edge_src] == GUEST) & (auth[edge_dest] != GUEST), REGISTERS, 0
    )
    return Machine(
        states=states,
        page=pa.array([s.page for s in states], pa.string()),
        method=pa.array([s.method for s in states], pa.string()),
        status=np.array([s.status for s in states], np.int32),
        auth=auth,
        level=level,
        is_song=np.array([s.page == SONG_PAGE for s in states]),
        is_redirect=np.array([s.status == 307 for s in states]),
        is_login=np.array([s.page == LOGIN_PAGE for s in states]),
        edge_key=edge_key,
        edge_dest=edge_dest,
        edge_next=np.append(edge_dest, np.int32(NO_STATE)).astype(np.int32),
        edge_flags=np.append(edge_flags, 0).astype(np.int8),
        row_end=row_end,
        start_key=start_key,
        start_dest=start_dest,
        start_end=start_end,
        show_details=np.array([shown.get(a, a in ("Logged In", "Cancelled")) for a in AUTHS]),
        churned_auth=AUTHS.index(config.churned_state),
        new_user_auth=AUTHS.index(config.new_user_auth),
        new_user_level=LEVELS.index(config.new_user_level),
        level_weights=_weights(config.levels, LEVELS),
        auth_weights=_weights(config.auths, AUTHS),
    )


def _csr(rows: list[list[tuple[int, float]]], *, normalize: bool) -> tuple[F64, I32, I64]:
    keys: list[float] = []
    dests: list[int] = []
    ends: list[int] = []
    for r, edges in enumerate(rows):
        total = sum(p for _, p in edges) if normalize else 1.0
        cum = 0.0
        for dest, p in edges:
            cum += p / total
            keys.append(r + min(cum, 1.0))
            dests.append(dest)
        if normalize and edges:
            keys[-1] = r + 1.0
        ends.append(len(keys))
    return np.array(keys, np.float64), np.array(dests, np.int32), np.array(ends, np.int64)


def _weights(pairs: tuple[tuple[str, float], ...], names: tuple[str, ...]) -> F64:
    w = np.zeros(len(names))
    for name, weight in pairs:
        w[names.index(name)] += weight
    out: F64 = w / w.sum()
    return out
