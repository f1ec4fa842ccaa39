"""The shelf contract: named, versioned blobs kept beside a store's results (trained models).

A :class:`Shelf` keeps, per name, a numbered sequence of versions, each a blob of bytes with
a small JSON object about it. :meth:`Shelf.put` is atomic: a reader sees the whole new
version or still the previous one, never part of one, whatever kills the writer (kill -9, a
full disk, a lost connection); versions are numbered 1, 2, ... in the order they were put.
Shelves are opened by ``--store`` location, independently of the store's writer, so a
process that trains a model can put it while another streams into the store and a third
serves it: ``sinks/registry.py`` :func:`~backbeat.sinks.registry.open_shelf`.

Backends: ``duckdb/shelf.py`` (files in the store's folder), ``postgres/shelf.py`` (a table in
the store's database).

Next: ``backbeat.recommend.store`` (what puts and takes models).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Shelved:
    """One version of a named blob."""

    name: str
    version: int
    created_ms: int
    """Wall-clock time it was put (epoch ms)."""
    data: bytes
    about: dict[str, Any] = field(default_factory=dict)
    """The JSON object given with it."""


class Shelf(ABC):
    """Named, versioned blobs beside a store (see the module docstring). Thread-safe."""

    @abstractmethod
    def put(self, name: str, data: bytes, about: Mapping[str, Any]) -> int:
        """Keep ``data`` as the next version of ``name`` and return its number; atomic.

        Raises:
            StoreError: it could not be kept (nothing changed).
        """

    @abstractmethod
    def latest(self, name: str) -> Shelved | None:
        """The newest complete version of ``name``; None when there is none.

        Raises:
            StoreError: the shelf cannot be read now, or the newest version is damaged.
        """

    @abstractmethod
    def version(self, name: str) -> int | None:
        """The newest version number of ``name`` (cheap: callers poll it); None: none yet."""

    @abstractmethod
    def prune(self, name: str, keep: int) -> int:
        """Delete all but the newest ``keep`` (>= 1) versions of ``name``; how many went."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the shelf holds."""
