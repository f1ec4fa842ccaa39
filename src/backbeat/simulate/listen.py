"""What a NextSong plays and how it is heard, drawn for many listens at once.

The genre comes from the user's hidden taste (a favourite, or with a small probability any
genre), the track from that genre by popularity (alias tables, O(1) per draw). Liked genres are
skipped less and rated higher, which is what makes the taste recoverable from listens. The
contract's rules hold by construction: ``listenPct`` in [0, 1] rounded to 4 decimals,
completed <=> listenPct >= 0.99, skipped => not completed (skips stop early),
``msPlayed = round(listenPct * duration * 1000)``, rating null ~70 % of the time, else
1.0-5.0 in steps of 0.5.

Next: ``engine.py`` calls :func:`draw_plays` for the users whose event is a NextSong (the
play's length sets the user's next event), then :func:`finish_listens` once per step.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from backbeat.simulate.catalog import Catalog
from backbeat.simulate.rng import uniform_rows
from backbeat.simulate.users import COUNTRIES, TASTE_K, Users

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

_LISTEN_SALT: Final = np.uint64(0x115E)
# Index = taste rank of the genre (0 = favourite), last = a genre outside the favourites.
SKIP_BY_RANK: Final = np.array([0.10, 0.16, 0.22, 0.28, 0.55])[-(TASTE_K + 1) :]
RATING_BY_RANK: Final = np.array([4.4, 4.1, 3.8, 3.5, 2.5])[-(TASTE_K + 1) :]
RATED_SHARE: Final = 0.3
TRAVEL_SHARE: Final = 0.02
FULL_PLAY_SHARE: Final = 0.9  # of listens that are not skipped


def draw_plays(
    users: Users, catalog: Catalog, u: I64, counters: U64
) -> dict[str, npt.NDArray[np.generic]]:
    """What users ``u`` play (one listen each) and for how long: what the engine's clock needs.

    Returns ``track``, ``pct``, ``ms_played``, ``skipped`` and ``rank`` (the genre's taste rank,
    for :func:`finish_listens`). Slot-major uniforms keep every operation on contiguous rows.
    """
    r = uniform_rows(users.keys[u] ^ _LISTEN_SALT, counters, 6)
    k = users.taste_genre.shape[1]
    base = u * k
    cdf = users.taste_cdf.reshape(-1)
    slot = np.zeros(len(u), np.int64)
    for j in range(k - 1):
        slot += cdf[base + j] < r[1]
    explore = r[0] < users.explore[u]
    rank = np.where(explore, len(SKIP_BY_RANK) - 1, slot)
    genre = np.where(
        explore,
        (r[1] * len(catalog.genres)).astype(np.int32),
        users.taste_genre.reshape(-1)[base + slot],
    )
    track = catalog.pick(genre, r[2])

    skipped = r[3] < SKIP_BY_RANK[rank]
    # a skip stops early (0.02-0.52); an interrupted play is 0.6-0.985, never "completed"
    partial = np.where(skipped, 0.02 + 0.5 * r[5], 0.6 + 0.385 * r[5])
    pct = np.where(skipped | (r[4] >= FULL_PLAY_SHARE), partial, 1.0)
    pct = np.rint(pct * 10_000) / 10_000
    ms_played = np.rint(pct * catalog.duration_s[track] * 1000).astype(np.int64)
    return {"track": track, "pct": pct, "ms_played": ms_played, "skipped": skipped, "rank": rank}


def finish_listens(
    users: Users, u: I64, counters: U64, rank: I64, skipped: npt.NDArray[np.bool_]
) -> dict[str, npt.NDArray[np.generic]]:
    """The rest of each listen (``platform``, ``country``, ``rating``), for many steps' plays.

    Nothing here feeds back into the simulation, so the engine draws it once per call of
    ``Engine.step`` from the same counters as :func:`draw_plays` (slots 4-7).
    """
    r = uniform_rows(users.keys[u] ^ _LISTEN_SALT, counters, 8, start=4)
    platform = np.where(
        r[2] < users.platform_share[u], users.platform_main[u], users.platform_alt[u]
    )
    travel = r[3] < TRAVEL_SHARE
    country = np.where(
        travel, (r[3] / TRAVEL_SHARE * len(COUNTRIES)).astype(np.int32), users.country[u]
    )
    rating = np.full(len(u), np.nan)
    rated = np.flatnonzero(r[0] * 7.0 % 1.0 < RATED_SHARE)
    stars = RATING_BY_RANK[rank[rated]] - 1.2 * skipped[rated] + (r[1, rated] - 0.5) * 2.0
    rating[rated] = np.clip(np.rint(stars * 2) / 2, 1.0, 5.0)
    return {"platform": platform, "country": country, "rating": rating}
