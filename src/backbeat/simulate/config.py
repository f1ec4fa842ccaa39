"""eventsim's site configuration, parsed and validated into a frozen dataclass.

A config describes the site as a Markov chain over page states ``(page, method, status, auth,
level)``: each transition carries a probability ``p`` and the mass missing from a state ends the
session; ``new-session`` weights pick the first state of a session per (auth, level). The keys
and their meaning follow eventsim's JSON files (``load_config``); ``default_config`` is
backbeat's own site, built in code (see ``defaults.py``). Times in the file are seconds, except
``weekend-damping-offset``/``-scale`` (minutes) as in eventsim.

Next: ``machine.py`` compiles a config into the arrays the vectorized engine steps.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backbeat.errors import ConfigError
from backbeat.events.schema import AUTHS, LEVELS, METHODS


@dataclass(frozen=True, slots=True)
class PageState:
    """One node of the site's Markov chain (what a page-view event shows)."""

    page: str
    method: str
    status: int
    auth: str
    level: str


@dataclass(frozen=True, slots=True)
class Transition:
    """An edge: from ``source`` the next page is ``dest`` with probability ``p``."""

    source: PageState
    dest: PageState
    p: float


@dataclass(frozen=True, slots=True)
class EventsimConfig:
    """A validated eventsim configuration (field names are the JSON keys in snake_case).

    ``alpha`` is the mean gap between requests within a session and ``beta`` the mean gap
    between sessions (seconds); ``session_gap`` is the minimum idle time before a new session.
    ``damping`` is the depth of the daily activity cycle (0 = flat) and ``weekend_damping`` the
    share of activity removed on weekends. ``growth_rate`` is the yearly growth of the user
    base (0.25 = +25 % a year).
    """

    seed: int
    alpha: float
    beta: float
    damping: float
    weekend_damping: float
    weekend_damping_offset: float
    weekend_damping_scale: float
    session_gap: float
    churned_state: str
    show_user_details: tuple[tuple[str, bool], ...]
    levels: tuple[tuple[str, float], ...]
    auths: tuple[tuple[str, float], ...]
    new_session: tuple[tuple[PageState, float], ...]
    new_user_auth: str
    new_user_level: str
    upgrades: tuple[str, ...]  # kept verbatim (JSON); level changes come from transitions
    downgrades: tuple[str, ...]
    transitions: tuple[Transition, ...]
    growth_rate: float = 0.0
    start_date: datetime | None = None
    end_date: datetime | None = None

    def with_overrides(
        self,
        *,
        seed: int | None = None,
        alpha: float | None = None,
        beta: float | None = None,
        damping: float | None = None,
        weekend_damping: float | None = None,
        session_gap: float | None = None,
        growth_rate: float | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> EventsimConfig:
        """A copy with every argument that is not None replacing the config value.

        Raises:
            ConfigError: an override is out of range (same rules as the file).
        """
        given: dict[str, Any] = {
            "seed": seed,
            "alpha": alpha,
            "beta": beta,
            "damping": damping,
            "weekend_damping": weekend_damping,
            "session_gap": session_gap,
            "growth_rate": growth_rate,
            "start_date": start_date,
            "end_date": end_date,
        }
        changed = dataclasses.replace(self, **{k: v for k, v in given.items() if v is not None})
        _check_ranges(changed, "overrides")
        return changed


_REQUIRED = [
    "seed",
    "alpha",
    "beta",
    "damping",
    "weekend-damping",
    "weekend-damping-offset",
    "weekend-damping-scale",
    "session-gap",
    "churned-state",
    "show-user-details",
    "levels",
    "auths",
    "new-session",
    "new-user-auth",
    "new-user-level",
    "upgrades",
    "downgrades",
    "transitions",
]


def load_config(path: str | Path) -> EventsimConfig:
    """Read an eventsim JSON config file.

    Raises:
        ConfigError: the file is missing, not JSON, lacks a key or holds a bad value; the
            message names the file, the key and what is wrong.
    """
    where = str(path)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the eventsim config: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON (line {exc.lineno}): {exc.msg}") from exc
    return config_from_dict(raw, where)


def config_from_dict(raw: object, where: str = "config") -> EventsimConfig:
    """Validate an already-parsed eventsim config (see :func:`load_config`)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: the top level must be a JSON object")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
    p = _Parser(where)
    config = EventsimConfig(
        seed=int(p.number(raw, "seed")),
        alpha=p.number(raw, "alpha"),
        beta=p.number(raw, "beta"),
        damping=p.number(raw, "damping"),
        weekend_damping=p.number(raw, "weekend-damping"),
        weekend_damping_offset=p.number(raw, "weekend-damping-offset"),
        weekend_damping_scale=p.number(raw, "weekend-damping-scale"),
        session_gap=p.number(raw, "session-gap"),
        churned_state=p.choice(raw["churned-state"], "churned-state", AUTHS),
        show_user_details=tuple(
            (p.choice(e.get("auth"), "show-user-details.auth", AUTHS), bool(e.get("show")))
            for e in p.objects(raw, "show-user-details")
        ),
        levels=p.weights(raw, "levels", "level", LEVELS),
        auths=p.weights(raw, "auths", "auth", AUTHS),
        new_session=tuple(
            (p.state(e, f"new-session[{i}]"), p.weight(e, f"new-session[{i}]"))
            for i, e in enumerate(p.objects(raw, "new-session"))
        ),
        new_user_auth=p.choice(raw["new-user-auth"], "new-user-auth", AUTHS),
        new_user_level=p.choice(raw["new-user-level"], "new-user-level", LEVELS),
        upgrades=tuple(json.dumps(e, sort_keys=True) for e in p.list(raw, "upgrades")),
        downgrades=tuple(json.dumps(e, sort_keys=True) for e in p.list(raw, "downgrades")),
        transitions=tuple(p.transition(e, i) for i, e in enumerate(p.objects(raw, "transitions"))),
        growth_rate=p.number(raw, "growth-rate") if "growth-rate" in raw else 0.0,
        start_date=p.date(raw, "start-date"),
        end_date=p.date(raw, "end-date"),
    )
    _check_ranges(config, where)
    _check_chain(config, where)
    return config


class _Parser:
    """Small typed readers that raise ConfigError naming the file and key."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: key {key!r}: {problem}")

    def number(self, raw: Mapping[str, Any], key: str) -> float:
        value = raw[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.fail(key, f"expected a number, got {value!r}")
        return float(value)

    def list(self, raw: Mapping[str, Any], key: str) -> Sequence[Any]:
        value = raw[key]
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {type(value).__name__}")
        return value

    def objects(self, raw: Mapping[str, Any], key: str) -> Sequence[Mapping[str, Any]]:
        items = self.list(raw, key)
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise self.fail(f"{key}[{i}]", f"expected an object, got {item!r}")
        return items

    def choice(self, value: object, key: str, allowed: Sequence[str]) -> str:
        if value not in allowed:
            raise self.fail(key, f"{value!r} is not one of {', '.join(allowed)}")
        return str(value)

    def weight(self, entry: Mapping[str, Any], key: str) -> float:
        w = entry.get("weight")
        if isinstance(w, bool) or not isinstance(w, int | float) or not w >= 0:
            raise self.fail(f"{key}.weight", f"expected a number >= 0, got {w!r}")
        return float(w)

    def weights(
        self, raw: Mapping[str, Any], key: str, name: str, allowed: Sequence[str]
    ) -> tuple[tuple[str, float], ...]:
        out = tuple(
            (self.choice(e.get(name), f"{key}[{i}].{name}", allowed), self.weight(e, f"{key}[{i}]"))
            for i, e in enumerate(self.objects(raw, key))
        )
        if not any(w > 0 for _, w in out):
            raise self.fail(key, "needs at least one entry with a positive weight")
        return out

    def state(self, e: Mapping[str, Any], key: str) -> PageState:
        page, status = e.get("page"), e.get("status")
        if not isinstance(page, str) or not page:
            raise self.fail(f"{key}.page", f"expected a page name, got {page!r}")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise self.fail(f"{key}.status", f"expected an HTTP status 100-599, got {status!r}")
        return PageState(
            page=page,
            method=self.choice(e.get("method"), f"{key}.method", METHODS),
            status=status,
            auth=self.choice(e.get("auth"), f"{key}.auth", AUTHS),
            level=self.choice(e.get("level"), f"{key}.level", LEVELS),
        )

    def transition(self, e: Mapping[str, Any], i: int) -> Transition:
        key = f"transitions[{i}]"
        source, dest, p = e.get("source"), e.get("dest"), e.get("p")
        if not isinstance(source, Mapping) or not isinstance(dest, Mapping):
            raise self.fail(key, "needs 'source' and 'dest' objects")
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise self.fail(f"{key}.p", f"expected a probability in [0, 1], got {p!r}")
        return Transition(self.state(source, f"{key}.source"), self.state(dest, f"{key}.dest"), p)

    def date(self, raw: Mapping[str, Any], key: str) -> datetime | None:
        value = raw.get(key)
        if value is None:
            return None
        try:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return datetime.fromtimestamp(value / 1000, tz=UTC)
            parsed = datetime.fromisoformat(str(value))
        except (ValueError, OverflowError) as exc:
            raise self.fail(key, f"expected an ISO date or epoch ms, got {value!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_ranges(c: EventsimConfig, where: str) -> None:
    rules = (
        ("alpha", c.alpha > 0, "must be > 0 seconds"),
        ("beta", c.beta > 0, "must be > 0 seconds"),
        ("session-gap", c.session_gap >= 0, "must be >= 0 seconds"),
        ("damping", 0 <= c.damping < 1, "must be in [0, 1)"),
        ("weekend-damping", 0 <= c.weekend_damping < 1, "must be in [0, 1)"),
        ("weekend-damping-scale", c.weekend_damping_scale >= 0, "must be >= 0 minutes"),
        ("growth-rate", c.growth_rate >= 0, "must be >= 0"),
        ("seed", 0 <= c.seed < 2**63, "must be in [0, 2**63)"),
    )
    for key, ok, problem in rules:
        if not ok:
            raise ConfigError(f"{where}: key {key!r} {problem}")
    if c.start_date and c.end_date and c.end_date <= c.start_date:
        raise ConfigError(f"{where}: key 'end-date' must be after 'start-date'")


def _check_chain(c: EventsimConfig, where: str) -> None:
    mass: dict[PageState, float] = {}
    for t in c.transitions:
        mass[t.source] = mass.get(t.source, 0.0) + t.p
    for state, total in mass.items():
        if total > 1 + 1e-6:
            raise ConfigError(
                f"{where}: key 'transitions': probabilities out of {state.page!r} "
                f"({state.auth}, {state.level}) sum to {total:.4f} > 1"
            )
