"""The embedded store's shelf: each version of a named blob is one file in the store's folder,
``<folder>/shelf/<name>/<version:012d>.blob``.

A file is a header (magic, then a length-prefixed JSON object with ``created_ms``, ``about``,
the data's ``size`` and its BLAKE2b ``digest``) followed by the data. :meth:`FileShelf.put`
writes a hidden temporary file in the same folder, flushes and fsyncs it, then claims the next
number with ``os.link`` (which fails when another writer took that number first: it tries the
next), so a version's file exists only once it is complete; a writer killed before that leaves
only its temporary file, swept by a later put after an hour. ``latest`` checks the header and
the digest, so a damaged file is an error naming it, never a silently wrong model.

Next: ``../shelf.py`` (the contract), ``../postgres/shelf.py`` (the same in PostgreSQL).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import struct
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from backbeat.errors import ConfigError, StoreError
from backbeat.sinks.duckdb.store import store_file
from backbeat.sinks.durable import fsync
from backbeat.sinks.shelf import Shelf, Shelved

NAME: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")
"""A shelf name: letters, digits, ``_`` and ``-`` (a file name everywhere, and no path)."""
MAGIC: Final = b"BBSHELF1"
_LENGTH: Final = struct.Struct(">I")
_VERSION: Final = re.compile(r"^(\d{12})\.blob$")
TEMP_PREFIX: Final = ".put-"
STALE_S: Final = 3600.0
"""A temporary file older than this was left by a killed writer: the next put deletes it."""


def checked_name(name: str) -> str:
    """``name`` when it is a valid shelf name.

    Raises:
        ConfigError: anything else (it would not be a plain file name).
    """
    if not NAME.match(name):
        raise ConfigError(
            f"shelf name {name!r}: use 1-100 letters, digits, '_' or '-' (not starting with '-')"
        )
    return name


def encode(data: bytes, about: Mapping[str, Any], created_ms: int) -> bytes:
    """The header of a version's file (the data follows it)."""
    header = json.dumps(
        {
            "created_ms": created_ms,
            "about": dict(about),
            "size": len(data),
            "digest": hashlib.blake2b(data).hexdigest(),
        },
        separators=(",", ":"),
    ).encode()
    return MAGIC + _LENGTH.pack(len(header)) + header


def decode(name: str, version: int, blob: bytes, path: Path) -> Shelved:
    """The version held by a file's bytes.

    Raises:
        StoreError: a damaged file (bad header, size or digest), naming it.
    """
    try:
        if not blob.startswith(MAGIC):
            raise ValueError("no shelf header")
        start = len(MAGIC) + _LENGTH.size
        (length,) = _LENGTH.unpack_from(blob, len(MAGIC))
        header = json.loads(blob[start : start + length])
        data = blob[start + length :]
        if len(data) != header["size"]:
            raise ValueError(f"{len(data)} bytes of data, the header says {header['size']}")
        if hashlib.blake2b(data).hexdigest() != header["digest"]:
            raise ValueError("the data does not match its digest")
        return Shelved(name, version, int(header["created_ms"]), data, dict(header["about"]))
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise StoreError(f"the shelf file {str(path)!r} is damaged: {exc}") from None


class FileShelf(Shelf):
    """Versioned blobs as files under ``<store folder>/shelf/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def at(cls, location: str) -> FileShelf:
        """The shelf beside the embedded store at ``location`` (a folder or
        ``duckdb://FOLDER``); its folder is made at the first put.

        Raises:
            ConfigError: ``location`` names a file, not a folder.
        """
        return cls(store_file(location).parent / "shelf")

    def _folder(self, name: str) -> Path:
        return self.root / checked_name(name)

    def _versions(self, folder: Path) -> list[int]:
        """The numbers of the complete versions in ``folder``, ascending."""
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list the shelf {str(folder)!r}: {exc}") from exc
        return sorted(int(m.group(1)) for n in names if (m := _VERSION.match(n)))

    def put(self, name: str, data: bytes, about: Mapping[str, Any]) -> int:
        folder = self._folder(name)
        head = encode(data, about, int(time.time() * 1000))
        temp = folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _sweep(folder)
            with open(temp, "xb") as out:
                out.write(head)
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            version = self._claim(folder, temp)
            temp.unlink()
            fsync(folder)  # the new name and the temporary one's removal, durable
        except OSError as exc:
            raise StoreError(f"cannot put {name!r} on the shelf {str(folder)!r}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return version

    def _claim(self, folder: Path, temp: Path) -> int:
        """Link ``temp`` as the next free version number (atomic: one writer wins each)."""
        found = self._versions(folder)
        version = (found[-1] if found else 0) + 1
        while True:
            try:
                os.link(temp, folder / f"{version:012d}.blob")
                return version
            except FileExistsError:
                version += 1

    def latest(self, name: str) -> Shelved | None:
        folder = self._folder(name)
        for _ in range(10):  # a version pruned between the listing and the read: list again
            found = self._versions(folder)
            if not found:
                return None
            path = folder / f"{found[-1]:012d}.blob"
            try:
                blob = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot read the shelf file {str(path)!r}: {exc}") from exc
            return decode(name, found[-1], blob, path)
        raise StoreError(f"the shelf {str(folder)!r} keeps changing under the reader: try again")

    def version(self, name: str) -> int | None:
        found = self._versions(self._folder(name))
        return found[-1] if found else None

    def prune(self, name: str, keep: int) -> int:
        if keep < 1:
            raise ConfigError(f"prune keep={keep}: keep at least the newest version (1)")
        folder = self._folder(name)
        gone = self._versions(folder)[:-keep]
        try:
            for version in gone:
                with contextlib.suppress(FileNotFoundError):
                    (folder / f"{version:012d}.blob").unlink()
            if gone:
                fsync(folder)
        except OSError as exc:
            raise StoreError(f"cannot prune the shelf {str(folder)!r}: {exc}") from exc
        return len(gone)


def _sweep(folder: Path) -> None:
    """Delete temporary files killed writers left behind (older than :data:`STALE_S`)."""
    cutoff = time.time() - STALE_S
    for path in folder.glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
