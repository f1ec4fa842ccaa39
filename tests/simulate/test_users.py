"""The population: fast to build, plausible identities, concentrated hidden taste."""

from __future__ import annotations

import time

import numpy as np

from backbeat.simulate import default_config
from backbeat.simulate.identity import identity_pool
from backbeat.simulate.machine import compile_machine
from backbeat.simulate.users import COUNTRIES, make_users


def _users(n: int, seed: int = 11, **kw: bool):  # type: ignore[no-untyped-def]
    config = default_config()
    return make_users(
        seed, 1, n, machine=compile_machine(config), alpha_s=config.alpha, beta_s=config.beta,
        n_genres=30, registered_before_ms=1_736_121_600_000, **kw,
    )  # fmt: skip


def test_ten_thousand_users_build_fast() -> None:
    started = time.perf_counter()
    users = _users(10_000, seed=12345)  # a fresh seed: the Faker pool is built too
    assert time.perf_counter() - started < 2.0
    assert len(users) == 10_000
    assert (users.user_id == np.arange(1, 10_001)).all()


def test_identities_are_plausible() -> None:
    users = _users(2_000)
    pool = identity_pool(11)
    zips = pool.zip.take(users.zip).to_pylist()
    states = pool.state.take(users.place).to_pylist()
    assert all(len(z) == 5 and z.isdigit() for z in zips)
    assert all(len(s) == 2 and s.isupper() for s in states)
    assert len(set(states)) > 20
    assert 0.4 < users.male.mean() < 0.6
    assert (users.registration < 1_736_121_600_000).all()
    home = np.bincount(users.country, minlength=len(COUNTRIES)) / len(users)
    assert 0.75 < home[COUNTRIES.index("US")] < 0.95


def test_levels_auths_and_habits() -> None:
    users = _users(5_000)
    assert 0.78 < (users.level == 0).mean() < 0.88  # default: 83 % free
    assert (users.alpha_ms > 0).all()
    assert (users.beta_ms > 0).all()
    assert 0.5 < np.median(users.beta_ms) / (default_config().beta * 1000) < 1.5
    newcomers = _users(100, newcomers=True)
    assert (newcomers.auth == 0).all()  # Guest


def test_taste_is_concentrated() -> None:
    users = _users(3_000)
    taste = users.taste_matrix(30)
    assert np.allclose(taste.sum(axis=1), 1.0)
    top3 = np.sort(taste, axis=1)[:, -3:].sum(axis=1)
    assert np.median(top3) > 0.7
    assert len(np.unique(users.taste_genre[:, 0])) > 15  # people differ
