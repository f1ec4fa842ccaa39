"""What a NextSong plays and how it is heard, drawn for many listens at once.

The genre comes from the user's hidden taste (a favourite, or with a small probability any
genre), the track from that genre by popularity (alias tables, O(1) per draw). Liked genres are
skipped less and rated higher, which is what makes the taste recoverable from listens. The
contract's rules hold by construction: ``listenPct`` in [0, 1] rounded to 4 decimals,
completed <=> listenPct >= 0.99, skipped => not completed (skips stop early),
``msPlayed = round(listenPct * duration * 1000)``, rating null ~70 % of the time, else
1.0-5.0 in steps of 0.5.

Next: ``engine.py`` calls :func:`draw_listens` for the users whose event is a NextSong.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from backbeat.simulate.catalog import Catalog
from backbeat.simulate.rng import uniforms
from backbeat.simulate.users import COUNTRIES, TASTE_K, Users

_LISTEN_SALT: Final = np.uint64(0x115E)
# Index = taste rank of the genre (0 = favourite), last = a genre outside the favourites.
SKIP_BY_RANK: Final = np.array([0.10, 0.16, 0.22, 0.28, 0.55])[-(TASTE_K + 1) :]
RATING_BY_RANK: Final = np.array([4.4, 4.1, 3.8, 3.5, 2.5])[-(TASTE_K + 1) :]
RATED_SHARE: Final = 0.3
TRAVEL_SHARE: Final = 0.02
FULL_PLAY_SHARE: Final = 0.9  # of listens that are not skipped


def draw_listens(
    users: Users, catalog: Catalog, u: npt.NDArray[np.int64], counters: npt.NDArray[np.uint64]
) -> dict[str, npt.NDArray[np.generic]]:
    """Listen columns for users ``u`` (one listen each), from their counter-based draws."""
    r = uniforms(users.keys[u] ^ _LISTEN_SALT, counters, 8)
    k = users.taste_genre.shape[1]
    cdf = users.taste_cdf[u]
    slot = np.zeros(len(u), np.int64)
    for j in range(k - 1):
        slot += cdf[:, j] < r[:, 1]
    explore = r[:, 0] < users.explore[u]
    rank = np.where(explore, len(SKIP_BY_RANK) - 1, slot)
    genre = users.taste_genre[u, slot]
    genre[explore] = (r[explore, 1] * len(catalog.genres)).astype(np.int32)
    track = catalog.pick(genre, r[:, 2])

    skipped = r[:, 3] < SKIP_BY_RANK[rank]
    partial = 0.6 + 0.385 * r[:, 5]  # an interrupted play: 0.6-0.985, never "completed"
    partial[skipped] = 0.02 + 0.5 * r[skipped, 5]  # a skip stops early
    pct = np.where(skipped | (r[:, 4] >= FULL_PLAY_SHARE), partial, 1.0)
    pct = np.rint(pct * 10_000) / 10_000
    ms_played = np.rint(pct * catalog.duration_s[track] * 1000).astype(np.int64)

    platform = np.where(
        r[:, 6] < users.platform_share[u], users.platform_main[u], users.platform_alt[u]
    )
    country = users.country[u]
    travel = np.flatnonzero(r[:, 7] < TRAVEL_SHARE)
    country[travel] = (r[travel, 7] / TRAVEL_SHARE * len(COUNTRIES)).astype(np.int32)

    rating = np.full(len(u), np.nan)
    rated = np.flatnonzero(r[:, 4] * 7.0 % 1.0 < RATED_SHARE)
    stars = RATING_BY_RANK[rank[rated]] - 1.2 * skipped[rated] + (r[rated, 5] - 0.5) * 2.0
    rating[rated] = np.clip(np.rint(stars * 2) / 2, 1.0, 5.0)
    return {
        "track": track,
        "platform": platform,
        "country": country,
        "pct": pct,
        "ms_played": ms_played,
        "skipped": skipped,
        "rating": rating,
    }
