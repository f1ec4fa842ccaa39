"""backbeat's default site: a Spotify-like Markov chain written in code, not copied from eventsim.

Logged-in users mostly play songs (NextSong is ~80 % of page views); free users see adverts and
may upgrade, paid users may downgrade; anyone logged in may cancel (churn). Logged-out visitors
log in (about 10 % of attempts fail), guests register. Numbers are ours; the format is eventsim's
(see ``config.py``), so the same engine runs eventsim's own files.

Next: ``machine.py`` compiles this into arrays.
"""

from __future__ import annotations

from typing import Final

from backbeat.simulate.config import EventsimConfig, PageState, Transition

# page -> (method, status)
PAGES: Final = {
    "Home": ("GET", 200),
    "NextSong": ("PUT", 200),
    "About": ("GET", 200),
    "Help": ("GET", 200),
    "Settings": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Upgrade": ("GET", 200),
    "Submit Upgrade": ("PUT", 307),
    "Downgrade": ("GET", 200),
    "Submit Downgrade": ("PUT", 307),
    "Logout": ("PUT", 307),
    "Login": ("PUT", 307),
    "Register": ("GET", 200),
    "Submit Registration": ("PUT", 307),
    "Error": ("GET", 404),
    "Cancel": ("PUT", 307),
    "Cancellation Confirmation": ("GET", 200),
    "Thumbs Up": ("PUT", 307),
    "Thumbs Down": ("PUT", 307),
    "Add to Playlist": ("PUT", 200),
    "Roll Advert": ("GET", 200),
}

# source page -> [(dest page, p, dest auth or None = same)], per audience. Missing mass ends
# the session. "Upgrade"/"Roll Advert" only exist for free, "Downgrade" only for paid users;
# where a destination does not exist for a level, its mass goes to the row's first edge.
_IN: Final[dict[str, list[tuple[str, float, str | None]]]] = {
    "Home": [
        ("NextSong", 0.78, None),
        ("Settings", 0.02, None),
        ("Help", 0.01, None),
        ("About", 0.005, None),
        ("Upgrade", 0.006, None),
        ("Downgrade", 0.004, None),
        ("Logout", 0.01, None),
        ("Cancel", 0.0004, None),
        ("Error", 0.002, None),
    ],
    "NextSong": [
        ("NextSong", 0.80, None),
        ("Thumbs Up", 0.045, None),
        ("Thumbs Down", 0.012, None),
        ("Add to Playlist", 0.02, None),
        ("Home", 0.03, None),
        ("Roll Advert", 0.04, None),
        ("Logout", 0.002, None),
        ("Upgrade", 0.001, None),
    ],
    "Thumbs Up": [("NextSong", 0.97, None), ("Home", 0.02, None)],
    "Thumbs Down": [("NextSong", 0.93, None), ("Home", 0.05, None)],
    "Add to Playlist": [("NextSong", 0.95, None), ("Home", 0.03, None)],
    "Roll Advert": [("NextSong", 0.885, None), ("Upgrade", 0.015, None), ("Home", 0.04, None)],
    "Settings": [
        ("Save Settings", 0.4, None),
        ("Home", 0.35, None),
        ("NextSong", 0.2, None),
        ("Cancel", 0.005, None),
    ],
    "Save Settings": [("Home", 0.75, None), ("NextSong", 0.2, None)],
    "Help": [("Home", 0.55, None), ("NextSong", 0.3, None), ("About", 0.05, None)],
    "About": [("Home", 0.55, None), ("NextSong", 0.3, None), ("Help", 0.05, None)],
    "Error": [("Home", 0.6, None), ("Help", 0.1, None), ("NextSong", 0.2, None)],
    "Upgrade": [("Submit Upgrade", 0.15, None), ("Home", 0.45, None), ("NextSong", 0.2, None)],
    "Submit Upgrade": [("Home", 1.0, None)],
    "Downgrade": [("Submit Downgrade", 0.25, None), ("Home", 0.5, None), ("NextSong", 0.2, None)],
    "Submit Downgrade": [("Home", 1.0, None)],
    "Logout": [("Home", 1.0, "Logged Out")],
    "Cancel": [("Cancellation Confirmation", 1.0, "Cancelled")],
}
_OUT: Final[dict[str, list[tuple[str, float, str | None]]]] = {
    "Home": [
        ("Login", 0.65, None),
        ("About", 0.04, None),
        ("Help", 0.04, None),
        ("Error", 0.005, None),
    ],
    "Login": [("Home", 0.9, "Logged In"), ("Home", 0.1, None)],
    "About": [("Home", 0.7, None), ("Login", 0.1, None)],
    "Help": [("Home", 0.7, None), ("Login", 0.1, None)],
    "Error": [("Home", 0.8, None)],
}
_GUEST: Final[dict[str, list[tuple[str, float, str | None]]]] = {
    "Home": [("Register", 0.3, None), ("About", 0.08, None), ("Help", 0.05, None)],
    "Register": [("Submit Registration", 0.6, None), ("Home", 0.2, None)],
    "Submit Registration": [("Home", 0.97, "Logged In"), ("Error", 0.03, None)],
    "About": [("Home", 0.6, None), ("Register", 0.15, None)],
    "Help": [("Home", 0.6, None), ("Register", 0.1, None)],
    "Error": [("Home", 0.6, None)],
}
_NEW_SESSION: Final = {
    "Logged In": {"NextSong": 55.0, "Home": 40.0, "Settings": 2.0, "Help": 2.0, "About": 1.0},
    "Logged Out": {"Home": 70.0, "Login": 25.0, "About": 3.0, "Help": 2.0},
    "Guest": {"Home": 70.0, "Register": 20.0, "About": 6.0, "Help": 4.0},
}
_FREE_ONLY: Final = frozenset({"Upgrade", "Submit Upgrade", "Roll Advert"})
_PAID_ONLY: Final = frozenset({"Downgrade", "Submit Downgrade"})


def _state(page: str, auth: str, level: str) -> PageState:
    method, status = PAGES[page]
    return PageState(page, method, status, auth, level)


def _allowed(page: str, level: str) -> bool:
    return not (
        (level == "paid" and page in _FREE_ONLY) or (level == "free" and page in _PAID_ONLY)
    )


def _transitions() -> list[Transition]:
    out: list[Transition] = []
    audiences = (("Logged In", _IN), ("Logged Out", _OUT), ("Guest", _GUEST))
    for auth, table in audiences:
        for level in ("free", "paid") if auth != "Guest" else ("free",):
            for src, edges in table.items():
                if not _allowed(src, level):
                    continue
                spare = sum(p for dest, p, _ in edges if not _allowed(dest, level))
                for i, (dest, p, dest_auth) in enumerate(edges):
                    if not _allowed(dest, level):
                        continue
                    p = p + spare if i == 0 else p
                    new_level = level
                    if src == "Submit Upgrade":
                        new_level = "paid"
                    elif src == "Submit Downgrade":
                        new_level = "free"
                    out.append(
                        Transition(
                            _state(src, auth, level),
                            _state(dest, dest_auth or auth, new_level),
                            p,
                        )
                    )
    return out


def default_config() -> EventsimConfig:
    """backbeat's own site: Spotify-like, NextSong ~80 % of page views (see the module
    docstring for its shape)."""
    new_session = [
        (_state(page, auth, level), weight)
        for auth, pages in _NEW_SESSION.items()
        for level in (("free", "paid") if auth != "Guest" else ("free",))
        for page, weight in pages.items()
    ]
    return EventsimConfig(
        seed=42,
        alpha=45.0,
        beta=8 * 3600.0,
        damping=0.6,
        weekend_damping=0.3,
        weekend_damping_offset=180.0,
        weekend_damping_scale=360.0,
        session_gap=1800.0,
        churned_state="Cancelled",
        show_user_details=(
            ("Guest", False),
            ("Logged In", True),
            ("Logged Out", False),
            ("Cancelled", True),
        ),
        levels=(("free", 83.0), ("paid", 17.0)),
        auths=(("Logged In", 90.0), ("Logged Out", 8.0), ("Guest", 2.0)),
        new_session=tuple(new_session),
        new_user_auth="Guest",
        new_user_level="free",
        upgrades=(),
        downgrades=(),
        transitions=tuple(_transitions()),
        growth_rate=0.25,
    )
