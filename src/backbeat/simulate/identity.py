"""A seeded pool of fake identities (names, US places, user agents) that users index into.

Faker costs tens of microseconds a call, so instead of one call per user per field we draw a
few thousand values once per seed and give each user independent indices into the pools:
10k or 1M users cost the same Faker time, and combinations stay varied. Places are Faker's
real US cities (``local_latlng``); the state is the nearest state centroid (good enough for
synthetic data) and zips come from ``zipcode_in_state``.

Next: ``users.py`` draws the indices.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from faker import Faker

ZIPS_PER_PLACE: Final = 4
_STATE_CENTROIDS: Final = {
    "AL": (32.8, -86.8), "AK": (64.0, -150.0), "AZ": (34.3, -111.7), "AR": (34.9, -92.4),
    "CA": (37.2, -119.5), "CO": (39.0, -105.5), "CT": (41.6, -72.7), "DE": (39.0, -75.5),
    "FL": (28.6, -82.4), "GA": (32.7, -83.4), "HI": (20.8, -156.3), "ID": (44.4, -114.6),
    "IL": (40.0, -89.2), "IN": (39.9, -86.3), "IA": (42.1, -93.5), "KS": (38.5, -98.4),
    "KY": (37.5, -85.3), "LA": (31.1, -92.0), "ME": (45.4, -69.2), "MD": (39.0, -76.8),
    "MA": (42.3, -71.8), "MI": (44.3, -85.4), "MN": (46.3, -94.3), "MS": (32.7, -89.7),
    "MO": (38.4, -92.5), "MT": (47.0, -109.6), "NE": (41.5, -99.8), "NV": (39.3, -116.6),
    "NH": (43.7, -71.6), "NJ": (40.2, -74.7), "NM": (34.4, -106.1), "NY": (42.9, -75.5),
    "NC": (35.6, -79.4), "ND": (47.5, -100.5), "OH": (40.3, -82.8), "OK": (35.6, -97.5),
    "OR": (43.9, -120.6), "PA": (40.9, -77.8), "RI": (41.7, -71.5), "SC": (33.9, -80.9),
    "SD": (44.4, -100.2), "TN": (35.9, -86.4), "TX": (31.5, -99.3), "UT": (39.3, -111.7),
    "VT": (44.1, -72.7), "VA": (37.5, -78.9), "WA": (47.4, -120.5), "WV": (38.6, -80.6),
    "WI": (44.6, -89.9), "WY": (43.0, -107.5),
}  # fmt: skip
# Extra reference points for large or oddly shaped states (nearest point decides the state).
_CITY_ANCHORS: Final = (
    ("TX", (29.8, -95.4)), ("TX", (32.8, -96.8)), ("TX", (31.8, -106.4)), ("TX", (29.4, -98.5)),
    ("TX", (27.8, -97.4)), ("TX", (35.2, -101.8)), ("CA", (34.05, -118.2)), ("CA", (37.8, -122.4)),
    ("CA", (32.7, -117.2)), ("CA", (38.6, -121.5)), ("CA", (40.6, -122.4)), ("FL", (25.8, -80.2)),
    ("FL", (30.3, -81.7)), ("FL", (30.4, -87.2)), ("FL", (27.9, -82.5)), ("NY", (40.7, -74.0)),
    ("NY", (42.9, -78.9)), ("NY", (43.0, -76.1)), ("PA", (39.95, -75.2)), ("PA", (40.4, -80.0)),
    ("IL", (41.9, -87.6)), ("MI", (42.3, -83.0)), ("WA", (47.6, -122.3)), ("WA", (47.7, -117.4)),
    ("OH", (41.5, -81.7)), ("OH", (39.1, -84.5)), ("GA", (33.7, -84.4)), ("NC", (35.2, -80.8)),
    ("VA", (36.85, -76.0)), ("TN", (35.1, -90.0)), ("LA", (30.0, -90.1)), ("MO", (38.6, -90.2)),
    ("MO", (39.1, -94.6)), ("MN", (45.0, -93.3)), ("AZ", (33.4, -112.1)), ("NV", (36.2, -115.1)),
    ("OR", (45.5, -122.7)), ("CO", (39.7, -105.0)), ("MD", (39.3, -76.6)), ("MA", (42.36, -71.06)),
    ("NJ", (40.7, -74.2)), ("NJ", (39.4, -74.5)), ("OK", (36.15, -95.99)), ("KY", (38.25, -85.76)),
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class IdentityPool:
    """Arrow arrays of candidate values; users hold indices into them."""

    first_male: pa.Array
    first_female: pa.Array
    last: pa.Array
    city: pa.Array  # per place
    state: pa.Array  # per place
    lat: npt.NDArray[np.float64]  # per place
    lon: npt.NDArray[np.float64]  # per place
    zip: pa.Array  # per place * ZIPS_PER_PLACE + k
    user_agent: pa.Array

    @property
    def n_places(self) -> int:
        return len(self.city)


@functools.lru_cache(maxsize=4)
def identity_pool(seed: int, size: int = 800) -> IdentityPool:
    """The pool for ``seed`` (cached: building it takes ~0.1 s)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    drawn = (fake.local_latlng(country_code="US") for _ in range(size // 2))
    places = sorted({(str(p[0]), str(p[1]), str(p[2])) for p in drawn if p is not None})
    lat = np.array([float(p[0]) for p in places])
    lon = np.array([float(p[1]) for p in places])
    anchors = [(s, ll) for s, ll in _STATE_CENTROIDS.items()] + list(_CITY_ANCHORS)
    codes = [s for s, _ in anchors]
    centroids = np.array([ll for _, ll in anchors])
    nearest = np.argmin(
        (lat[:, None] - centroids[None, :, 0]) ** 2
        + ((lon[:, None] - centroids[None, :, 1]) * np.cos(np.radians(lat))[:, None]) ** 2,
        axis=1,
    )
    states = [codes[i] for i in nearest]
    zips = [_zip(fake, s) for s in states for _ in range(ZIPS_PER_PLACE)]
    return IdentityPool(
        first_male=pa.array([fake.first_name_male() for _ in range(size)], pa.string()),
        first_female=pa.array([fake.first_name_female() for _ in range(size)], pa.string()),
        last=pa.array([fake.last_name() for _ in range(size * 2)], pa.string()),
        city=pa.array([p[2] for p in places], pa.string()),
        state=pa.array(states, pa.string()),
        lat=lat,
        lon=lon,
        zip=pa.array(zips, pa.string()),
        user_agent=pa.array([fake.user_agent() for _ in range(size // 2)], pa.string()),
    )


def _zip(fake: Faker, state: str) -> str:
    try:
        code = str(fake.zipcode_in_state(state))
    except (KeyError, ValueError, AttributeError):
        code = str(fake.zipcode())
    return code[:5].zfill(5)
