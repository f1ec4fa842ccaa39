"""Hand-written valid records of every topic, for codec and engine tests."""

from __future__ import annotations

from typing import Any

from backbeat.events import SCHEMA_VERSION, Topic

BASE_TS = 1_700_000_000_000


def record(topic: Topic, i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid record of ``topic``; ``i`` varies ids and time, ``overrides`` replace fields."""
    letter = {
        "listen_events": "l",
        "page_view_events": "p",
        "auth_events": "a",
        "status_change_events": "s",
    }[topic.value]
    rec: dict[str, Any] = {
        "ts": BASE_TS + i * 1000,
        "eventId": f"{letter}-{1000 + i // 10}-{i % 10}",
        "schemaVersion": SCHEMA_VERSION,
        "sessionId": 1000 + i // 10,
        "itemInSession": i % 10,
        "level": "paid" if i % 5 == 0 else "free",
        "auth": "Logged In",
        "city": "Tampa",
        "zip": "03301",
        "state": "FL",
        "lat": 27.95,
        "lon": -82.46,
        "userAgent": "Mozilla/5.0",
        "userId": 10 + i % 7,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "gender": "F",
        "registration": BASE_TS - 86_400_000,
    }
    if topic is Topic.LISTEN:
        pct = [1.0, 0.5, 0.12, 0.995][i % 4]
        rec |= {
            "artist": f"Artist {i % 3}",
            "song": f"Song {i % 11}",
            "duration": 200.5,
            "trackId": f"t{i % 11}",
            "album": "Album",
            "genre": ["rock", "pop", "jazz"][i % 3],
            "platform": "ios",
            "country": "US",
            "mood": "happy",
            "msPlayed": int(pct * 200_500),
            "listenPct": pct,
            "completed": pct >= 0.99,
            "skipped": pct < 0.2,
            "rating": None if i % 2 else 4.5,
        }
    elif topic is Topic.PAGE_VIEW:
        rec |= {"page": "Home", "method": "GET", "status": 200}
    elif topic is Topic.AUTH:
        rec |= {"success": i % 10 != 0}
    else:
        rec |= {"prevLevel": "free"}
    rec.update(overrides)
    return rec
