"""The user population as NumPy columns: identity indices, habits and a hidden taste.

Each user holds indices into an ``IdentityPool`` (name, place, zip, user agent), a
registration time, an initial level and auth drawn from the config's weights, personal
``alpha``/``beta`` (log-normal around the config's), a preferred platform mix, a home country
(mostly US) and a hidden taste: ``TASTE_K`` favourite genres with Dirichlet weights plus a
small share of exploration over all genres. Users are built in blocks, each from its own seeded
generator, so growth adds users deterministically. No per-user Python objects.

Next: ``engine.py`` simulates what these users do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from backbeat.events.schema import PLATFORMS, TS_MIN_MS
from backbeat.simulate.identity import ZIPS_PER_PLACE, IdentityPool, identity_pool
from backbeat.simulate.machine import Machine
from backbeat.simulate.rng import keys_for

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

TASTE_K: Final = 4
COUNTRIES: Final = ("US", "CA", "GB", "MX", "DE", "FR", "BR", "AU", "IN", "SE", "ES", "NL", "JP")
_COUNTRY_W: Final = np.array([85, 3, 2.5, 2, 1.5, 1, 1.5, 1, 0.8, 0.5, 0.5, 0.4, 0.3])
_PLATFORM_W: Final = np.array([0.3, 0.3, 0.1, 0.15, 0.03, 0.05, 0.07])  # order of PLATFORMS
_DAY_MS: Final = 86_400_000


@dataclass(frozen=True, eq=False)
class Users:
    """Column arrays, one row per user; ``user_id = first_id + row``."""

    user_id: I64
    male: npt.NDArray[np.bool_]
    first_name: I32  # into the male or female first-name pool
    last_name: I32
    place: I32
    zip: I32  # into IdentityPool.zip
    user_agent: I32
    registration: I64
    level: I32
    auth: I32
    alpha_ms: F64
    beta_ms: F64
    taste_genre: I32  # (n, TASTE_K), most liked first
    taste_cdf: F64  # (n, TASTE_K) cumulative weights within the favourites
    explore: F64  # share of listens drawn uniformly over all genres
    platform_main: I32  # index into PLATFORMS: the user's usual device
    platform_alt: I32  # the other device they use
    platform_share: F64  # share of listens on the usual device
    country: I32  # index into COUNTRIES
    lon: F64
    keys: npt.NDArray[np.uint64]  # counter-based RNG key per user

    def __len__(self) -> int:
        return len(self.user_id)

    def concat(self, other: Users) -> Users:
        """These users followed by ``other``'s."""
        return Users(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )

    def taste_matrix(self, n_genres: int) -> F64:
        """Each user's hidden probability of picking each genre, ``(n, n_genres)``."""
        n = len(self)
        weights = np.diff(self.taste_cdf, axis=1, prepend=0.0) * (1.0 - self.explore)[:, None]
        out = np.repeat((self.explore / n_genres)[:, None], n_genres, axis=1)
        np.add.at(out, (np.arange(n)[:, None], self.taste_genre), weights)
        return out


def make_users(
    seed: int,
    first_id: int,
    n: int,
    *,
    machine: Machine,
    alpha_s: float,
    beta_s: float,
    n_genres: int,
    registered_before_ms: int,
    newcomers: bool = False,
) -> Users:
    """Build ``n`` users with ids ``first_id ...`` (a deterministic block for the seed).

    Initial users (``newcomers=False``) registered up to three years before
    ``registered_before_ms`` and draw level/auth from the config weights; newcomers (growth)
    start with the config's new-user auth and level.
    """
    rng = np.random.default_rng([seed, 0x05E25, first_id])
    pool: IdentityPool = identity_pool(seed)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    male = rng.random(n) < 0.5
    place = rng.integers(0, pool.n_places, n).astype(np.int32)
    level: npt.NDArray[np.integer[Any]]
    auth: npt.NDArray[np.integer[Any]]
    if newcomers:
        level = np.full(n, machine.new_user_level, np.int32)
        auth = np.full(n, machine.new_user_auth, np.int32)
        registration = np.full(n, registered_before_ms, np.int64)
    else:
        level = rng.choice(len(machine.level_weights), n, p=machine.level_weights)
        auth = rng.choice(len(machine.auth_weights), n, p=machine.auth_weights)
        age = rng.uniform(_DAY_MS, 3 * 365 * _DAY_MS, n).astype(np.int64)
        registration = np.maximum(registered_before_ms - age, TS_MIN_MS)

    k = min(TASTE_K, n_genres)
    genre_pop = 1.0 / np.arange(1, n_genres + 1) ** 0.7  # some genres are more popular
    gumbel = np.log(genre_pop)[None, :] - np.log(-np.log(rng.random((n, n_genres))))
    taste_genre = np.argsort(-gumbel, axis=1)[:, :k].astype(np.int32)
    taste_w = -np.sort(-rng.dirichlet(np.array([4.0, 2.0, 1.0, 0.6][:k]), n), axis=1)
    devices = rng.choice(len(PLATFORMS), (n, 2), p=_PLATFORM_W / _PLATFORM_W.sum())
    return Users(
        user_id=ids,
        male=male,
        first_name=rng.integers(0, len(pool.first_male), n).astype(np.int32),
        last_name=rng.integers(0, len(pool.last), n).astype(np.int32),
        place=place,
        zip=(place * ZIPS_PER_PLACE + rng.integers(0, ZIPS_PER_PLACE, n)).astype(np.int32),
        user_agent=rng.integers(0, len(pool.user_agent), n).astype(np.int32),
        registration=registration.astype(np.int64),
        level=np.asarray(level, np.int32),
        auth=np.asarray(auth, np.int32),
        alpha_ms=alpha_s * 1000 * rng.lognormal(-0.03, 0.25, n),
        beta_ms=beta_s * 1000 * rng.lognormal(-0.18, 0.6, n),
        taste_genre=taste_genre,
        taste_cdf=np.cumsum(taste_w, axis=1),
        explore=rng.beta(2.0, 18.0, n),
        platform_main=devices[:, 0].astype(np.int32),
        platform_alt=devices[:, 1].astype(np.int32),
        platform_share=rng.uniform(0.6, 0.95, n),
        country=rng.choice(len(COUNTRIES), n, p=_COUNTRY_W / _COUNTRY_W.sum()).astype(np.int32),
        lon=pool.lon[place],
        keys=keys_for(seed, 0x05E2, ids),
    )
