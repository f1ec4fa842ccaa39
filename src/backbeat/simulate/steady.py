"""Steady state at the start: which users are already in a session, and since when.

eventsim starts every user idle, so a run ramps up for hours (a session lasts 45 minutes on
average, one in a hundred over 3.5 hours) before it reaches its normal rate. Instead, each
user's last session start before the run's start is drawn here from the stationary behaviour,
and the engine simulates those sessions from there, dropping their events before the start:
users whose session is still going at the start carry on with it (``itemInSession`` counting
on), the others are idle until their next start, drawn as usual but never before the start.

Stationary, a user starts sessions at rate ``c * a(s)`` at time ``s``: ``a`` is the activity at
the user's local time (``calendar.py``) and ``c = 1 / (beta + A * (D + G))``, because a waiting
user starts at rate ``a / beta`` (``beta``: the user's mean gap) and waits a share
``beta / (beta + A * (D + G))`` of the time (``D``: the user's mean session length,
:func:`mean_session_ms`, from the site's chain; ``G``: the session gap; ``A``: the activity
half a session and gap before the start, as the share busy follows the recent activity: with
the week's mean instead, 7 % fewer sessions are under way on a weekday morning).
The last start is drawn at the age ``x`` where the expected number of starts back from the
start, ``c * (integral of a over the last x)``, reaches a uniform ``U``. Its density is then the
start rate itself, as it truly is at every age a session or its gap can still cover (nothing
else started since); at older ages the user is idle at the start either way, which the engine's
next draw handles. (Taking the first start of a Poisson process backwards, a number ~ Exp(1)
instead of U, thins recent starts by ``exp(-number)``: 10-20 % fewer sessions under way.)
Ages beyond ``G + LOOKBACK_SESSIONS * D`` count as idle: the sessions under way that are
older are about ``exp(-LOOKBACK_SESSIONS)`` of them (session lengths are close to
exponential), and not simulating the older sessions saves 40 % of this warm-up.

Next: ``engine.py`` (its constructor calls :func:`last_starts`, then simulates up to the start).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from backbeat.events.schema import LEVELS
from backbeat.simulate.calendar import ActivityTable
from backbeat.simulate.machine import Machine
from backbeat.simulate.rng import uniform_rows
from backbeat.simulate.users import Users

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

NO_START: Final = np.iinfo(np.int64).min
"""``last_starts`` for a user idle at the start since longer than any session lasts."""
LOOKBACK_SESSIONS: Final = 6
PLAYED_SHARE: Final = 0.85
"""The mean share of a track played (``listen.py``: skips stop early, most plays are whole)."""
REDIRECT_MS: Final = 1_000.0  # the engine's wait after a redirect (HTTP 307) page
_STEADY_SALT: Final = np.uint64(0x57EAD1)


def last_starts(
    users: Users,
    machine: Machine,
    activity: ActivityTable,
    *,
    song_ms: float,
    gap_ms: float,
    start_ms: int,
) -> I64:
    """Each user's last session start before ``start_ms`` in the stationary regime (see the
    module docstring), or ``NO_START`` when it is older than any session still going.

    ``song_ms`` is the mean length of a track. Deterministic: one uniform per user, from a
    stream of its own (never the engine's).
    """
    session = mean_session_ms(machine, users, song_ms)
    busy = session + gap_ms
    lately = activity(start_ms - np.rint(busy / 2).astype(np.int64), users.lon)
    rate = 1.0 / (users.beta_ms + lately * busy)
    lookback = gap_ms + LOOKBACK_SESSIONS * session
    u = uniform_rows(users.keys ^ _STEADY_SALT, np.zeros(len(users), np.uint64), 1)[0]
    amount = u / rate  # activity x ms back to the last start; activity <= 1, so age >= amount
    age = np.full(len(users), np.inf)
    near = np.flatnonzero(amount < lookback)
    age[near] = activity.since(start_ms, users.lon[near], amount[near])
    recent = age < lookback
    return np.where(recent, start_ms - np.rint(np.where(recent, age, 0)), NO_START).astype(np.int64)


def mean_session_ms(machine: Machine, users: Users, song_ms: float) -> F64:
    """Each user's mean session length: the expected visits of each state in a session that
    starts from the user's (auth, level), times the wait after each (a track for a song,
    ``REDIRECT_MS`` after a redirect, the user's ``alpha`` after any other page)."""
    visits = session_visits(machine)
    song = visits[:, machine.is_song].sum(axis=1)
    redirect = visits[:, machine.is_redirect & ~machine.is_song].sum(axis=1)
    other = visits.sum(axis=1) - song - redirect
    cat = users.auth * len(LEVELS) + users.level
    out: F64 = (
        song[cat] * song_ms * PLAYED_SHARE
        + redirect[cat] * REDIRECT_MS
        + other[cat] * users.alpha_ms
    )
    return out


def session_visits(machine: Machine) -> F64:
    """Expected visits of each state in one session, per start category (``auth * len(LEVELS)
    + level``): ``start @ inv(I - P)``, ``P`` the transition matrix, whose missing mass ends the
    session. A chain that may never end (no missing mass reachable) counts no visits."""
    n = len(machine.states)
    n_cat = len(machine.start_end)
    moves = _dense(machine.edge_key, machine.edge_dest, machine.row_end, n)
    starts = _dense(machine.start_key, machine.start_dest, machine.start_end, n)
    try:
        visits = np.asarray(np.linalg.solve(np.eye(n) - moves.T, starts.T).T, np.float64)
    except np.linalg.LinAlgError:
        return np.zeros((n_cat, n))
    if not np.isfinite(visits).all() or (visits < -1e-9).any():
        return np.zeros((n_cat, n))
    return visits


def _dense(keys: F64, dest: npt.NDArray[np.int32], ends: I64, n_cols: int) -> F64:
    """A CSR sampling table (row ``r``'s cumulative probabilities shifted by ``r``) as a dense
    probability matrix."""
    row = np.repeat(np.arange(len(ends)), np.diff(ends, prepend=0))
    cum = keys - row
    before = np.zeros(len(cum))
    before[1:] = np.where(row[1:] == row[:-1], cum[:-1], 0.0)
    out = np.zeros((len(ends), n_cols))
    np.add.at(out, (row, dest), cum - before)
    return out
