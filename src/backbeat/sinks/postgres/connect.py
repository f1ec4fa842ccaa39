"""Connecting to PostgreSQL: the ``--store postgresql://...`` location, libpq's own settings,
and the password kept out of sight.

The URL is handed to libpq unchanged, so everything libpq reads applies: the standard ``PG*``
variables (``PGHOST``, ``PGUSER``, ``PGPASSWORD``...), ``~/.pgpass``, ``sslmode`` and the
other parameters in the URL's query. backbeat adds an ``application_name`` and a connect
timeout when the URL sets none. The password is never part of what backbeat shows: every
message names the location through :func:`redacted`, and a password written into ``--store``
on a command line is refused by the CLI (a process listing shows every argument).

Next: ``schema.py`` (the tables and their migrations), ``store.py`` (the writer).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import conninfo

from backbeat.errors import ConfigError, StoreError

SCHEMES: Final = ("postgresql://", "postgres://")
APPLICATION: Final = "backbeat"
CONNECT_TIMEOUT_S: Final = 10


def redacted(location: str) -> str:
    """``location`` with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(location)
    if parts.password is None:
        return location
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def settings(location: str) -> dict[str, Any]:
    """Connection keyword arguments for ``location`` (a ``postgresql://`` URL).

    Raises:
        ConfigError: not a PostgreSQL URL, or one libpq cannot parse.
    """
    if not location.lower().startswith(SCHEMES):
        raise ConfigError(f"--store {redacted(location)!r}: not a postgresql:// URL")
    try:
        given = conninfo.conninfo_to_dict(location)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"--store {redacted(location)!r}: {_first_line(exc)}") from None
    extra: dict[str, Any] = {}
    if "application_name" not in given:
        extra["application_name"] = APPLICATION
    if "connect_timeout" not in given:
        extra["connect_timeout"] = CONNECT_TIMEOUT_S
    return {"conninfo": location, **extra}


def connect(location: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    """A new connection to ``location``.

    Raises:
        ConfigError: a malformed URL; StoreError: the server cannot be reached or refuses.
    """
    kwargs = settings(location)
    try:
        return psycopg.connect(**kwargs, autocommit=autocommit)
    except psycopg.Error as exc:
        raise StoreError(
            f"cannot connect to the store {redacted(location)!r}: {_first_line(exc)}"
        ) from None


def failed(action: str, location: str, exc: psycopg.Error) -> StoreError:
    """A one-line StoreError for a failed database operation."""
    return StoreError(f"{action} the store {redacted(location)!r} failed: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
