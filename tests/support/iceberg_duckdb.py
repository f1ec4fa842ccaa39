"""An independent Iceberg reader for the tests: DuckDB 1.5.5 with its ``iceberg``, ``avro`` and
``httpfs`` extensions, in a virtual environment of its own (the project pins a DuckDB that has
no Iceberg extension offline), so a table pyiceberg wrote is checked by code we did not write.

:func:`reader_environment` builds that environment with uv once (``duckdb==1.5.5`` and the
``duckdb-extension-*`` wheels of PyPI, which hold ``duckdb_extension_<name>/extensions/v1.5.5/
<name>.duckdb_extension``) into ``~/.cache/backbeat-tests/duckdb-iceberg-1.5.5``: built in a
temporary folder and renamed into place once it works, so a killed run never leaves a half
environment, and reused by later sessions. It raises :class:`ReaderUnavailableError` (the
``duckdb_iceberg`` fixture skips with it) when uv or the package index is missing.
:meth:`IcebergReader.query` runs one SQL there, each name a view over ``iceberg_scan`` of a
``metadata.json`` (a pyiceberg table's ``metadata_location``; an older one reads an older
snapshot), on a local path or on S3.

Next: ``tests/warehouse/test_iceberg_duckdb_reader.py``, the ``duckdb_iceberg`` fixture in
``tests/conftest.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.sockets import venv_tool

DUCKDB_VERSION = "1.5.5"
EXTENSIONS = ("avro", "iceberg", "httpfs")
"""Loaded in this order: ``iceberg`` reads manifests with ``avro``; ``httpfs`` reads ``s3://``."""
REQUIREMENTS = (
    f"duckdb=={DUCKDB_VERSION}",
    *(f"duckdb-extension-{name}=={DUCKDB_VERSION}" for name in EXTENSIONS),
)
BUILD_TIMEOUT_S = 600.0
QUERY_TIMEOUT_S = 120.0
REPO = Path(__file__).resolve().parents[2]

# Runs in the reader's environment: loads each extension from its wheel by file path (no
# download, no autoloading of whatever a developer has in ~/.duckdb), makes the views and
# prints one JSON object per row, as DuckDB's own to_json writes it.
_SCRIPT = """
import importlib.util, json, pathlib, sys
import duckdb
request = json.load(sys.stdin)
con = duckdb.connect(config={"autoinstall_known_extensions": False,
                             "autoload_known_extensions": False})
for name in request["extensions"]:
    package = importlib.util.find_spec("duckdb_extension_" + name)
    folder = pathlib.Path(package.submodule_search_locations[0]) / "extensions"
    con.load_extension(str(folder / ("v" + duckdb.__version__) / (name + ".duckdb_extension")))
for statement in request["setup"]:
    con.execute(statement)
for row in con.sql(request["sql"]).fetchall():
    sys.stdout.write(row[0] + "\\n")
"""


class ReaderUnavailableError(Exception):
    """The reader cannot be built here (no uv, no package index): the tests skip with it."""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class IcebergReader:
    """DuckDB 1.5.5 in its own environment; ``python`` is that environment's interpreter."""

    python: Path

    def query(
        self, sql: str, tables: Mapping[str, str], s3_endpoint: str | None = None
    ) -> list[dict[str, Any]]:
        """The rows of ``sql``, where each name of ``tables`` is a view over
        ``iceberg_scan(<its metadata.json>)``, a local path or ``s3://bucket/...``.

        Values arrive as DuckDB's ``to_json`` writes them: numbers (a HUGEINT sum exactly,
        a DECIMAL as a float), strings for timestamps (``2026-01-01 10:00:00``) and dates,
        lists and objects. ``s3_endpoint`` (``http://host:port``) serves the ``s3://``
        paths, with the key and secret of the ``AWS_*`` variables.

        Raises:
            AssertionError: DuckDB failed (bad SQL, unreadable table): its error is the message.
        """
        setup = [self._s3_secret(s3_endpoint)] if s3_endpoint else []
        setup += [
            f"CREATE VIEW {_ident(name)} AS SELECT * FROM iceberg_scan({_quote(str(location))})"
            for name, location in tables.items()
        ]
        request = {
            "extensions": EXTENSIONS,
            "setup": setup,
            "sql": f"SELECT to_json(q)::VARCHAR FROM ({sql.strip().rstrip(';')}) AS q",
        }
        done = subprocess.run(
            [str(self.python), "-c", _SCRIPT],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"DuckDB {DUCKDB_VERSION} failed on {sql!r}:\n{done.stderr}")
        return [json.loads(line) for line in done.stdout.splitlines()]

    @staticmethod
    def _s3_secret(endpoint: str) -> str:
        where = urlsplit(endpoint)
        options = {
            "KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
            "SECRET": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
            "REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "ENDPOINT": where.netloc,
            "URL_STYLE": "path",
        }
        listed = ", ".join(f"{key} {_quote(value)}" for key, value in options.items())
        use_ssl = "true" if where.scheme == "https" else "false"
        return f"CREATE SECRET backbeat_s3 (TYPE s3, {listed}, USE_SSL {use_ssl})"


def uv_binary() -> Path | None:
    """uv as ``make`` installs it (``.tools/bin/uv`` of this checkout, or of the project whose
    venv runs the tests), else beside the interpreter or on PATH."""
    for root in (REPO, Path(sys.prefix).parent):
        candidate = root / ".tools" / "bin" / "uv"
        if candidate.is_file():
            return candidate
    return venv_tool("uv")


def cache_root() -> Path:
    """Where the reader's environment stays between sessions: ``$XDG_CACHE_HOME`` (or
    ``~/.cache``)``/backbeat-tests``."""
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "backbeat-tests"


def _probe(python: Path) -> bool:
    """Whether ``python`` runs and loads DuckDB with every extension (a query of nothing)."""
    if not python.is_file():
        return False
    reader = IcebergReader(python)
    try:
        return reader.query("SELECT 1 AS one", {}) == [{"one": 1}]
    except (AssertionError, OSError, subprocess.TimeoutExpired):
        return False


def _run_uv(command: list[str]) -> None:
    env = {**os.environ, "UV_PYTHON_PREFERENCE": "only-system", "UV_NO_PROGRESS": "1"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=BUILD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise ReaderUnavailableError(
            f"{' '.join(command)} took over {BUILD_TIMEOUT_S:.0f}s"
        ) from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.strip().splitlines()] or ["(no output)"]
        why = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        raise ReaderUnavailableError(f"cannot build the DuckDB {DUCKDB_VERSION} reader: {why}")


def reader_environment(root: Path | None = None) -> IcebergReader:
    """The reader, its environment reused from ``root`` (default :func:`cache_root`) when it
    works there, else built with uv and renamed into place.

    Raises:
        ReaderUnavailableError: no uv, or uv could not install the packages (no network, say).
    """
    root = root or cache_root()
    target = root / f"duckdb-iceberg-{DUCKDB_VERSION}"
    python = target / "bin" / "python"
    if _probe(python):
        return IcebergReader(python)
    uv = uv_binary()
    if uv is None:
        raise ReaderUnavailableError("no uv: run `make install` (it puts uv in .tools/bin)")
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"{target.name}.building-", dir=root))
    try:
        _run_uv([str(uv), "venv", "--quiet", "--relocatable", "--python", sys.executable,
                 str(building / "env")])  # fmt: skip
        _run_uv([str(uv), "pip", "install", "--quiet", "--python",
                 str(building / "env" / "bin" / "python"), *REQUIREMENTS])  # fmt: skip
        if not _probe(building / "env" / "bin" / "python"):
            raise ReaderUnavailableError(
                f"the DuckDB {DUCKDB_VERSION} reader built in {building} fails"
            )
        if target.exists():  # a broken one (a Python upgrade, say): set it aside, then drop it
            stale = Path(tempfile.mkdtemp(prefix=f"{target.name}.stale-", dir=root))
            target.rename(stale / "env")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            (building / "env").rename(target)
        except OSError:  # another session renamed its own first: use that one
            if not _probe(python):
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return IcebergReader(python)
