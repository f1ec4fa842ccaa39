"""Parts chosen by name: a registry per kind (sources, stores, sinks, engines), imported lazily.

Each :class:`Plugin` names where its code lives (``"package.module:Name"``), which optional
extra it needs and the modules that extra provides. Nothing is imported until the part is
chosen, so ``backbeat demo`` never loads Kafka, and a missing extra is one line that says what
to install (``the kafka-dlq sink needs: pip install 'backbeat[kafka]'``); an unknown name is
one line naming the choices. The registries themselves live with their contracts:
``backbeat.transport.registry``, ``backbeat.sinks.registry``, ``backbeat.engine.registry``.

Next: ``backbeat.sinks.registry`` (stores by URL scheme, sinks by name).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from backbeat.errors import ConfigError, MissingExtraError


@dataclass(frozen=True, slots=True)
class Plugin:
    """One part that can be chosen by name.

    Attributes:
        kind: what it is (``source``, ``store``, ``sink``, ``engine``), for messages.
        name: the name users give.
        target: ``"package.module:attribute"``, imported when the part is loaded.
        summary: one line for ``--help`` and docs.
        extra: the ``backbeat[...]`` extra that provides ``needs``.
        needs: top-level modules that must be importable.
    """

    kind: str
    name: str
    target: str
    summary: str
    extra: str | None = None
    needs: tuple[str, ...] = ()

    def missing(self) -> str | None:
        """The first needed module that cannot be imported, or None."""
        return next((m for m in self.needs if importlib.util.find_spec(m) is None), None)

    def load(self) -> Any:
        """The part's class or factory.

        Raises:
            MissingExtraError: a module of its extra is not installed.
        """
        if self.missing() is not None:
            raise MissingExtraError(f"the {self.name} {self.kind}", self.extra or self.name)
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


class Registry(Mapping[str, Plugin]):
    """The parts of one kind, by name."""

    def __init__(self, kind: str, *plugins: Plugin) -> None:
        self.kind = kind
        self._plugins = {p.name: p for p in plugins}

    def __getitem__(self, name: str) -> Plugin:
        return self._plugins[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)

    def choose(self, name: str) -> Plugin:
        """The plugin called ``name``.

        Raises:
            ConfigError: no such name (the message lists the choices).
        """
        plugin = self._plugins.get(name)
        if plugin is None:
            raise ConfigError(f"unknown {self.kind} {name!r}: choose one of {', '.join(self)}")
        return plugin

    def load(self, name: str) -> Any:
        """The loaded part called ``name`` (see :meth:`Plugin.load`)."""
        return self.choose(name).load()
