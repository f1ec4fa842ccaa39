"""One exception hierarchy for backbeat.

Every error a user can see derives from :class:`BackbeatError`. Subclasses say whether
trying again can help (:class:`TransientError`) or not (:class:`TerminalError`); the CLI turns
any of them into a one-line message and exit code 1. Bad *records* are never exceptions: they
are data, routed to dead letters (see ``backbeat.events.codec``).
"""

from __future__ import annotations


class BackbeatError(Exception):
    """Root of every backbeat error. The message names the bad value and what to do."""


class TerminalError(BackbeatError):
    """Retrying the same call cannot succeed: fix the input, the config or the install."""


class TransientError(BackbeatError):
    """The call may succeed if retried (a busy resource, a lost connection)."""


class ConfigError(TerminalError):
    """A setting, flag or config file is invalid."""


class MissingExtraError(TerminalError):
    """An optional dependency is not installed."""

    def __init__(self, what: str, extra: str) -> None:
        """``what``: the part that needs it, e.g. ``"the postgres store"``."""
        super().__init__(f"{what} needs: pip install 'backbeat[{extra}]'")
        self.extra = extra


class SourceError(TerminalError):
    """A source of events cannot be read (missing file, unreadable input)."""


class StoreError(TerminalError):
    """The store cannot be opened or written."""


class StoreNotReadyError(StoreError):
    """A store that was created but holds no results yet (or is not a backbeat store)."""


class UnsupportedQueryError(TerminalError):
    """The store answers named queries, but not this one (the API answers 501)."""


class NotFoundError(TerminalError):
    """What a query names does not exist (a track no catalog or history knows): the API
    answers 404."""


class StoreLockedError(TransientError):
    """Another process holds the store; wait for it or point at another --store."""


class FencedError(TransientError):
    """Another process committed a partition this one was about to commit (it lost it)."""

    def __init__(self, message: str, partitions: list[str]) -> None:
        super().__init__(message)
        self.partitions = partitions
