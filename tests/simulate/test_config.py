"""Config loading: eventsim's own files, the built-in default, overrides and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backbeat.errors import ConfigError
from backbeat.simulate.config import EventsimConfig, load_config
from backbeat.simulate.defaults import PAGES, default_config
from backbeat.simulate.machine import compile_machine

EVENTSIM = Path("/work/shared/data/eventsim")
FILES = ["streamify-example-config.json", "Accordion-config.json"]


@pytest.mark.parametrize("name", FILES)
def test_loads_real_eventsim_files(name: str) -> None:
    path = EVENTSIM / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    config = load_config(path)
    raw = json.loads(path.read_text())
    assert config.alpha == raw["alpha"]
    assert config.session_gap == raw["session-gap"]
    assert len(config.transitions) == len(raw["transitions"])
    assert config.churned_state == "Cancelled"
    machine = compile_machine(config)
    assert machine.is_song.any()


def test_default_config_has_the_expected_pages() -> None:
    config = default_config()
    pages = {t.source.page for t in config.transitions} | {t.dest.page for t in config.transitions}
    assert pages == set(PAGES)
    adverts = [t for t in config.transitions if "Roll Advert" in (t.source.page, t.dest.page)]
    assert adverts
    assert all(t.source.level == "free" for t in adverts)


def test_default_login_fails_about_ten_percent() -> None:
    logins = [t for t in default_config().transitions if t.source.page == "Login"]
    failed = sum(t.p for t in logins if t.dest.auth == "Logged Out") / len(
        {t.source for t in logins}
    )
    assert failed == pytest.approx(0.1)


def test_overrides_replace_only_given_values() -> None:
    base = default_config()
    changed = base.with_overrides(alpha=10.0, growth_rate=None)
    assert changed.alpha == 10.0
    assert changed.growth_rate == base.growth_rate
    with pytest.raises(ConfigError, match="damping"):
        base.with_overrides(damping=1.5)


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def _valid() -> dict[str, object]:
    return json.loads((EVENTSIM / FILES[0]).read_text()) if (EVENTSIM / FILES[0]).exists() else {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alpha": "fast"}, "key 'alpha': expected a number"),
        ({"beta": -1}, "key 'beta' must be > 0"),
        ({"churned-state": "Gone"}, "key 'churned-state': 'Gone' is not one of"),
        ({"levels": [{"level": "gold", "weight": 1}]}, "key 'levels[0].level'"),
        ({"transitions": [{"source": {}, "dest": {}, "p": 2}]}, "transitions[0].p"),
    ],
)
def test_bad_values_name_file_key_and_problem(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    data = _valid()
    if not data:
        pytest.skip("eventsim example config not available")
    data.update(change)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_key_and_bad_json_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing key.*'alpha'"):
        load_config(_write(tmp_path, {"seed": 1}))
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.json")


def test_probabilities_over_one_are_rejected(tmp_path: Path) -> None:
    data = _valid()
    if not data:
        pytest.skip("eventsim example config not available")
    transitions = data["transitions"]
    assert isinstance(transitions, list)
    data["transitions"] = [*transitions, {**transitions[0], "p": 0.99}]
    with pytest.raises(ConfigError, match="sum to"):
        load_config(_write(tmp_path, data))


def test_config_is_frozen() -> None:
    config = default_config()
    assert isinstance(config, EventsimConfig)
    with pytest.raises(AttributeError):
        config.alpha = 1.0  # type: ignore[misc]
