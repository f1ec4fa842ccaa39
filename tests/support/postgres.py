"""A private PostgreSQL server for the test session, and a fresh database for each test.

:func:`postgres_server` runs ``initdb`` into a temporary directory and starts ``postgres`` on a
free loopback port (unix sockets in that directory too), tuned for tests (no fsync), and stops
it with an immediate shutdown at the end. As root (``initdb`` refuses root) the server runs as
the ``postgres`` OS user, through ``subprocess``'s ``user=``/``group=`` (no ``su``, no
``preexec_fn``). The superuser ``postgres`` is trusted; the role ``backbeat`` must give its
password (SCRAM), so tests can check how a password travels (:meth:`PasswordRole.env`).
:func:`fresh_database` creates a uniquely named database from ``template0``;
:func:`password_url` one that the password role owns.

Next: ``tests/conftest.py`` (the ``postgres_server`` and ``postgres_url`` fixtures),
``test_postgres_fixture.py``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from tests.support.sockets import free_port

SUPERUSER = "postgres"
ROLE = "backbeat"
READY_TIMEOUT_S = 60.0
"""Generous: a loaded 2-core machine starts it in well under a second."""
INITDB_TIMEOUT_S = 120.0
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "100",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "password_encryption": "scram-sha-256",
}
HBA = f"""\
local all {SUPERUSER} trust
host  all {SUPERUSER} 127.0.0.1/32 trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
"""


@dataclass(frozen=True, slots=True)
class PasswordRole:
    """A login role that must give its password; ``url`` carries no password."""

    user: str
    password: str
    url: str

    def env(self, *, with_password: bool = True) -> dict[str, str]:
        """The environment for a process connecting as this role: ``os.environ`` without a
        developer's ``PG*`` settings, with ``PGPASSWORD`` (or without it, nor ``~/.pgpass``)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGPASSFILE"] = "/nonexistent/pgpass"  # /dev/null: libpq warns
        if with_password:
            env["PGPASSWORD"] = self.password
        return env


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A running server: ``url`` is ``postgresql://SUPERUSER@127.0.0.1:PORT``.

    ``role`` and ``directory`` are None for a server brought with ``BACKBEAT_TEST_POSTGRES``
    (its users and its ``pg_hba.conf`` are not ours).
    """

    url: str
    role: PasswordRole | None = None
    directory: Path | None = None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log (empty for a server of someone else's)."""
        return _tail(self.directory / "server.log") if self.directory else ""


def server_binaries() -> Path | None:
    """The directory holding ``initdb``, ``postgres``: from PATH (symlinks resolved), else the
    newest ``/usr/lib/postgresql/*/bin`` (Debian keeps them out of PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    versions.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return versions[-1] if versions else None


def missing_server() -> str | None:
    """Why no server can be started here, or None when one can."""
    if server_binaries() is None:
        return (
            "no PostgreSQL server: initdb is neither in PATH nor in /usr/lib/postgresql/*/bin "
            "(make system-deps installs the postgresql package)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return "running as root, and there is no 'postgres' OS user to run the server as"
    return None


@contextmanager
def postgres_server(
    attempts: int = 3, settings: Mapping[str, str] | None = None
) -> Iterator[PostgresServer]:
    """Start a private server; stop it (immediate shutdown) and delete its files on exit.
    ``settings`` are added to :data:`SETTINGS` (``benchmarks/bench_stores.py`` preloads
    ``pg_stat_statements``).

    Raises:
        RuntimeError: ``initdb`` failed, or the server did not accept connections within
            ``READY_TIMEOUT_S`` on any of ``attempts`` free ports (with the log's last lines).
    """
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError(missing_server())
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        as_user = {"user": SUPERUSER, "group": pwd.getpwnam(SUPERUSER).pw_gid, "extra_groups": []}
    # /tmp, not pytest's tmp_path: the postgres user must reach it, and socket paths are short.
    directory = Path(tempfile.mkdtemp(prefix="backbeat-pg-", dir="/tmp" if as_user else None))
    try:
        if as_user:
            os.chown(directory, pwd.getpwnam(SUPERUSER).pw_uid, as_user["group"])
        (directory / "pg_hba.conf").write_text(HBA)
        _initdb(binaries, directory, as_user)
        for attempt in range(1, attempts + 1):
            port = free_port()
            proc = _start(binaries, directory, port, as_user, settings or {})
            try:
                url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}"
                _wait_ready(url, proc, directory)
                role = _create_role(url, port)
                yield PostgresServer(url, role, directory)
                return
            except _PortTakenError:
                if attempt == attempts:
                    raise RuntimeError(f"no free port in {attempts} attempts") from None
            finally:
                _stop(proc)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def wait_ready(url: str) -> None:
    """Return once the server at ``url`` accepts a connection (``RuntimeError`` after
    ``READY_TIMEOUT_S``)."""
    _wait_ready(url, None, None)


def fresh_database(server: PostgresServer | str, owner: str | None = None) -> str:
    """Create an empty database (``TEMPLATE template0``) with a unique name on ``server`` (or
    the server of a base URL); its URL is the base URL with that database. ``owner`` (a role)
    may create tables in its ``public`` schema, which PostgreSQL 15 grants no other role."""
    base_url = server if isinstance(server, str) else server.url
    name = f"t_{uuid.uuid4().hex[:16]}"
    query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if owner:
        query += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
    with psycopg.connect(maintenance_url(base_url), autocommit=True) as conn:
        conn.execute(query)
    return with_database(base_url, name)


def password_url(server: PostgresServer) -> tuple[str, str]:
    """A fresh database owned by the password role: its URL as that role (no password in it)
    and the password, to give through ``PGPASSWORD`` or a password file. Skips the calling
    test on a server of ``BACKBEAT_TEST_POSTGRES`` (its roles and ``pg_hba.conf`` are not ours).
    """
    if server.role is None:
        pytest.skip("BACKBEAT_TEST_POSTGRES brings its own server: no password role of ours")
    name = urlsplit(fresh_database(server, owner=server.role.user)).path.lstrip("/")
    return with_database(server.role.url, name), server.role.password


def drop_database(server: PostgresServer | str, url: str) -> None:
    """Drop the database of ``url`` from ``server`` (as its user: ``url`` may be a role's),
    closing its sessions first."""
    base_url = server if isinstance(server, str) else server.url
    name = urlsplit(url).path.lstrip("/")
    query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(maintenance_url(base_url), autocommit=True) as conn:
        conn.execute(query)


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (user, password, host and parameters kept)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def maintenance_url(url: str) -> str:
    """``url`` pointing at the ``postgres`` database, where databases are created."""
    return with_database(url, "postgres")


class _PortTakenError(Exception):
    """Another process bound the port between :func:`free_port` and the server."""


def _initdb(binaries: Path, directory: Path, as_user: dict[str, Any]) -> None:
    log = directory / "initdb.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [str(binaries / "initdb"), "-D", str(directory / "data"), "-U", SUPERUSER,
             "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            stdout=out, stderr=subprocess.STDOUT, cwd=directory, env=_server_env(),
            timeout=INITDB_TIMEOUT_S, check=False, **as_user,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed (exit {done.returncode}):\n{_tail(log)}")


def _start(
    binaries: Path,
    directory: Path,
    port: int,
    as_user: dict[str, Any],
    extra: Mapping[str, str],
) -> subprocess.Popen[bytes]:
    settings = {
        **SETTINGS,
        **extra,
        "port": str(port),
        "unix_socket_directories": str(directory),
        "hba_file": str(directory / "pg_hba.conf"),
    }
    options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
    with (directory / "server.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(binaries / "postgres"), "-D", str(directory / "data"), *options],
            stdout=log, stderr=subprocess.STDOUT, cwd=directory, env=_server_env(), **as_user,
        )  # fmt: skip


def _wait_ready(url: str, proc: subprocess.Popen[bytes] | None, directory: Path | None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            log = _tail(directory / "server.log") if directory else ""
            if "could not bind" in log or "Address already in use" in log:
                raise _PortTakenError
            raise RuntimeError(f"postgres exited with code {proc.returncode}:\n{log}")
        try:
            with psycopg.connect(url, dbname="postgres", connect_timeout=5):
                return
        except psycopg.OperationalError as exc:  # refused, or "starting up"
            error = exc
            time.sleep(0.05)
    log = f"\n{_tail(directory / 'server.log')}" if directory else ""
    shown = urlsplit(url)._replace(netloc=urlsplit(url).netloc.rpartition("@")[2])
    raise RuntimeError(
        f"{urlunsplit(shown)} refused connections for {READY_TIMEOUT_S:.0f}s: {error}{log}"
    )


def _create_role(url: str, port: int) -> PasswordRole:
    password = secrets.token_urlsafe(12)
    with psycopg.connect(url, dbname="postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(password)
            )
        )
    return PasswordRole(ROLE, password, f"postgresql://{ROLE}@127.0.0.1:{port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGQUIT is ``pg_ctl stop -m immediate``: no checkpoint, the files are thrown away."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def _server_env() -> dict[str, str]:
    """No developer ``PG*`` settings (PGDATA, PGPORT...) reach initdb or the server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({log} is unreadable)"
