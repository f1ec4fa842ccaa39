"""The session's PostgreSQL server (``tests/conftest.py``, ``support/postgres.py``): it answers,
each test's database is its own, and the role ``backbeat`` needs its password.

Next: ``postgres.py`` (the server), ``../conftest.py`` (the fixtures).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration
psycopg = pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is missing")

from tests.support.postgres import (  # noqa: E402
    PostgresServer,
    drop_database,
    fresh_database,
    password_url,
)

CONNECT = "import psycopg, sys; print(psycopg.connect(sys.argv[1]).info.user)"
"""A libpq client in a process of its own, with nothing but the environment to authenticate."""


def test_the_server_answers_in_a_database_of_the_tests_own(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE listens (id int PRIMARY KEY)")
        conn.execute("INSERT INTO listens VALUES (1), (2)")
        row = conn.execute("SELECT current_database(), count(*) FROM listens").fetchone()
    assert row == (postgres_url.rsplit("/", 1)[1], 2)


def test_two_fresh_databases_are_distinct(postgres_server: PostgresServer) -> None:
    first, second = fresh_database(postgres_server.url), fresh_database(postgres_server.url)
    try:
        assert first != second
        with psycopg.connect(first) as conn:
            conn.execute("CREATE TABLE only_here (id int)")
        with psycopg.connect(second) as conn:
            found = conn.execute("SELECT to_regclass('only_here')").fetchone()
        assert found == (None,)
    finally:
        drop_database(postgres_server, first)
        drop_database(postgres_server, second)


def test_the_password_role_connects_with_pgpassword_only(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, password = password_url(postgres_server)
    role = postgres_server.role
    assert role is not None
    assert password not in url
    try:
        ok = subprocess.run(
            [sys.executable, "-c", CONNECT, url],
            env=role.env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert (ok.returncode, ok.stdout.strip()) == (0, role.user), ok.stderr
        refused = subprocess.run(
            [sys.executable, "-c", CONNECT, url],
            env=role.env(with_password=False), capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        assert "no password supplied" in refused.stderr, refused.stderr

        for name, value in role.env(with_password=False).items():
            if name.startswith("PG"):
                monkeypatch.setenv(name, value)
        monkeypatch.delenv("PGPASSWORD", raising=False)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(url, password="not-" + password)
        with psycopg.connect(url, password=password) as conn:  # the owner: it may create
            conn.execute("CREATE TABLE mine (id int)")
    finally:
        drop_database(postgres_server, url)
