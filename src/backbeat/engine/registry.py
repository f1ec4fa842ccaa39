"""Engines by ``--engine`` name, imported lazily (``embedded``; Spark joins in its issue).

Each entry builds an :class:`~backbeat.engine.base.Engine` from a source, the primary store,
the result sinks, settings and an ``on_batch`` callback.

Next: ``base.py`` (the contract), ``pipeline.py`` (the embedded engine).
"""

from __future__ import annotations

from typing import Final

from backbeat.plugins import Plugin, Registry

ENGINES: Final = Registry(
    "engine",
    Plugin(
        "engine",
        "embedded",
        "backbeat.engine.pipeline:Pipeline",
        "micro-batches in this process: no JVM, broker or server (the default)",
    ),
)
