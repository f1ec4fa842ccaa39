"""Scheduled incidents: a spike or a drop of activity for a while, maybe for one scope only.

``--incident WHEN+DURATION:xFACTOR[:platform=P][:country=CC]`` (repeatable), e.g.
``12:00+15m:x5`` (five times the usual activity from 12:00 to 12:15 UTC), ``+2h+30m:x0.2``
(a fifth of it, two hours after the run's start, for 30 minutes) or
``2026-01-07T12:00+1h:x0:platform=android`` (an Android outage). ``WHEN`` is an ISO time
(no zone: UTC), ``HH:MM`` (UTC: the first such time whose window ends after the run's start,
on its first day or the next) or ``+DURATION`` (after the run's start); a duration is a whole
number and a unit (``s``, ``m``, ``h``, ``d``); the factor is in ``[0, MAX_FACTOR]``. A scope
narrows the incident to the listens on that platform and/or in that country (only listens carry
them). :func:`parse_incident` turns one flag value into an :class:`Incident` with its window
resolved against the run's start; a bad value is one :class:`ConfigError` line naming it and
the expected form.

Next: ``incident_effects.py`` applies incidents to the simulated events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final

from backbeat.errors import ConfigError
from backbeat.events.schema import PLATFORMS
from backbeat.simulate.users import COUNTRIES

MAX_FACTOR: Final = 20.0
"""A spike adds ``factor - 1`` times the population for its window: this bounds the cost."""
FORM: Final = (
    "WHEN+DURATION:xFACTOR[:platform=P][:country=CC] (WHEN: ISO time, HH:MM UTC or +DURATION "
    "after the start), e.g. 12:00+15m:x5 or +1h+30m:x0.2:platform=android"
)
_SHAPE: Final = re.compile(r"(?P<when>.+?)\+(?P<dur>\d+[smhd]):x(?P<factor>[^:]+)(?P<scope>:.*)?")
_CLOCK: Final = re.compile(r"(?P<h>\d{1,2}):(?P<m>\d{2})")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Incident:
    """Activity times ``factor`` in ``[start, end)`` for the events in scope.

    Attributes:
        start: the window's first instant (timezone-aware).
        end: the instant after its last.
        factor: ``> 1`` a spike (more listeners), ``< 1`` a drop (events lost), in
            ``[0, MAX_FACTOR]``.
        platform: only listens on this platform (one of ``PLATFORMS``); None: any.
        country: only listens in this country (one of ``users.COUNTRIES``); None: any.
    """

    start: datetime
    end: datetime
    factor: float
    platform: str | None = None
    country: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError(f"incident times must be timezone-aware, got {self.start}")
        if self.end <= self.start:
            raise ConfigError(f"incident end ({self.end}) must be after its start ({self.start})")
        if not 0.0 <= self.factor <= MAX_FACTOR:
            raise ConfigError(f"incident factor must be in [0, {MAX_FACTOR:g}], got {self.factor}")
        if self.platform is not None and self.platform not in PLATFORMS:
            raise ConfigError(f"incident platform {self.platform!r}: use one of {PLATFORMS}")
        if self.country is not None and self.country not in COUNTRIES:
            raise ConfigError(f"incident country {self.country!r}: use one of {COUNTRIES}")

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def scoped(self) -> bool:
        """Does it apply to some listens only (a platform or a country)?"""
        return self.platform is not None or self.country is not None

    def describe(self) -> str:
        """One line for people, e.g. ``x5 2026-01-05T12:00Z+15m platform=android``."""
        minutes = (self.end - self.start) / timedelta(minutes=1)
        scope = "".join(
            f" {k}={v}" for k, v in (("platform", self.platform), ("country", self.country)) if v
        )
        when = self.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
        return f"x{self.factor:g} {when}+{minutes:g}m{scope}"


def parse_incident(text: str, run_start: datetime) -> Incident:
    """One ``--incident`` value (see the module docstring), resolved against ``run_start``.

    Raises:
        ConfigError: the value does not follow the form, or a part of it is out of range.
    """
    match = _SHAPE.fullmatch(text.strip())
    if match is None:
        raise _bad(text, "")
    length = timedelta(seconds=int(match["dur"][:-1]) * _UNIT_S[match["dur"][-1]])
    if not length:
        raise _bad(text, "the duration must be > 0")
    try:
        factor = float(match["factor"])
    except ValueError:
        raise _bad(text, f"factor x{match['factor']} is not a number") from None
    if not 0.0 <= factor <= MAX_FACTOR:
        raise _bad(text, f"the factor must be in x0..x{MAX_FACTOR:g}")
    start = _when(match["when"], length, run_start, text)
    scope = _scope(match["scope"] or "", text)
    return Incident(start=start, end=start + length, factor=factor, **scope)


def parse_incidents(
    texts: list[str] | tuple[str, ...], run_start: datetime
) -> tuple[Incident, ...]:
    """Every ``--incident`` value, in the order given."""
    return tuple(parse_incident(t, run_start) for t in texts)


def _when(when: str, length: timedelta, run_start: datetime, text: str) -> datetime:
    if when.startswith("+"):
        offset = when[1:]
        if not re.fullmatch(r"\d+[smhd]", offset):
            raise _bad(text, f"{when!r} is not +DURATION (e.g. +30m)")
        return run_start + timedelta(seconds=int(offset[:-1]) * _UNIT_S[offset[-1]])
    clock = _CLOCK.fullmatch(when)
    if clock is not None:
        hour, minute = int(clock["h"]), int(clock["m"])
        if hour > 23 or minute > 59:
            raise _bad(text, f"{when!r} is not a time of day")
        day = run_start.astimezone(UTC).date()
        first = datetime.combine(day, time(hour, minute), tzinfo=UTC)
        return first if first + length > run_start else first + timedelta(days=1)
    try:
        parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(text, f"{when!r} is not an ISO time, HH:MM or +DURATION") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _scope(scope: str, text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in scope.split(":")[1:]:
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key not in ("platform", "country") or not value or key in out:
            raise _bad(text, f"{part!r} is not platform=P or country=CC (each at most once)")
        value = value.strip().lower() if key == "platform" else value.strip().upper()
        choices = PLATFORMS if key == "platform" else COUNTRIES
        if value not in choices:
            raise _bad(text, f"unknown {key} {value!r}: use one of {', '.join(choices)}")
        out[key] = value
    return out


def _bad(text: str, why: str) -> ConfigError:
    reason = f"{why}; " if why else ""
    return ConfigError(f"--incident {text!r}: {reason}write {FORM}")
